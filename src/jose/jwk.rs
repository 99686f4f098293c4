//! JSON Web Key sets as a JWKS endpoint serves them. Only signing keys (`use: sig`) with a
//! `kid` are kept, as in Oathkeeper; private members are ignored, so a private JWK acts as its
//! public key. A key this build cannot use is skipped, not fatal: one odd key must not take the
//! whole set down.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// The key material, decoded once when the set is fetched.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed SEC1 point (`04 || x || y`).
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
    Oct(Vec<u8>),
}

impl fmt::Debug for Material {
    // Shared secrets never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Material::Rsa { .. } => "RSA",
            Material::P256(_) => "EC P-256",
            Material::P384(_) => "EC P-384",
            Material::Ed25519(_) => "OKP Ed25519",
            Material::Oct(_) => "oct",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    /// The key's own `alg`, when it names one: tokens must then use exactly that.
    pub alg: Option<String>,
    pub material: Material,
    /// The public key as DER SubjectPublicKeyInfo, for the host's verifier: built once, when
    /// the set is parsed, for the RSA and EC keys jwt-simple accepts (so both backends refuse
    /// the same keys). Derived from `material`.
    pub spki: Option<Arc<[u8]>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwkError {
    /// The document is not a JSON object with a `keys` array.
    NotAKeySet,
}

impl fmt::Display for JwkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwkError::NotAKeySet => f.write_str("the document is not a JWKS (no \"keys\" array)"),
        }
    }
}

impl std::error::Error for JwkError {}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

impl KeySet {
    /// `spki`: build each RSA and EC key's SubjectPublicKeyInfo (for the host's crypto).
    pub fn parse(body: &[u8], spki: bool) -> Result<KeySet, JwkError> {
        let raw: RawSet = serde_json::from_slice(body).map_err(|_| JwkError::NotAKeySet)?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<RawKey>(k).ok())
            .filter_map(|k| Jwk::from_raw(k, spki))
            .collect();
        Ok(KeySet { keys })
    }

    /// The signing key with this id.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn b64(field: Option<&String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(field?.trim_end_matches('=').as_bytes())
        .ok()
        .filter(|v| !v.is_empty())
}

impl Jwk {
    fn from_raw(raw: RawKey, spki: bool) -> Option<Jwk> {
        if raw.usage.as_deref() != Some("sig") {
            return None;
        }
        let kid = raw.kid.filter(|k| !k.is_empty())?;
        let material = match (raw.kty.as_str(), raw.crv.as_deref()) {
            ("RSA", _) => Material::Rsa {
                n: b64(raw.n.as_ref())?,
                e: b64(raw.e.as_ref())?,
            },
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let size = if crv == "P-256" { 32 } else { 48 };
                let (x, y) = (b64(raw.x.as_ref())?, b64(raw.y.as_ref())?);
                if x.len() != size || y.len() != size {
                    return None;
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if size == 32 {
                    Material::P256(point)
                } else {
                    Material::P384(point)
                }
            }
            ("OKP", Some("Ed25519")) => Material::Ed25519(b64(raw.x.as_ref())?),
            ("oct", _) => Material::Oct(b64(raw.k.as_ref())?),
            _ => return None,
        };
        Some(Jwk {
            kid,
            alg: raw.alg.filter(|a| !a.is_empty()),
            spki: if spki { self::spki(&material) } else { None },
            material,
        })
    }

    /// Whether this key may verify `alg`: its type must fit, and its own `alg`, if any, match.
    pub fn fits(&self, alg: &str) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                Material::Rsa { .. },
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
            ) | (Material::P256(_), "ES256")
                | (Material::P384(_), "ES384")
                | (Material::Ed25519(_), "EdDSA")
                | (Material::Oct(_), "HS256" | "HS384" | "HS512")
        )
    }
}

/// DER SubjectPublicKeyInfo of an RSA or EC key that jwt-simple accepts (modulus size,
/// exponent, point on the curve), so that both backends refuse the same keys.
pub fn spki(material: &Material) -> Option<Arc<[u8]>> {
    use super::der::{spki_ec, spki_rsa, Curve};
    use jwt_simple::prelude::{ES256PublicKey, ES384PublicKey, RS256PublicKey};
    let der = match material {
        Material::Rsa { n, e } => {
            RS256PublicKey::from_components(n, e).ok()?;
            spki_rsa(n, e)
        }
        Material::P256(p) => {
            ES256PublicKey::from_bytes(p).ok()?;
            spki_ec(Curve::P256, p)
        }
        Material::P384(p) => {
            ES384PublicKey::from_bytes(p).ok()?;
            spki_ec(Curve::P384, p)
        }
        _ => return None,
    };
    Some(Arc::from(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_usable_signing_keys() {
        let set = KeySet::parse(
            br#"{"keys":[
              {"kty":"oct","kid":"a","use":"sig","k":"c2VjcmV0"},
              {"kty":"oct","kid":"enc","use":"enc","k":"c2VjcmV0"},
              {"kty":"oct","kid":"nouse","k":"c2VjcmV0"},
              {"kty":"oct","use":"sig","k":"c2VjcmV0"},
              {"kty":"EC","kid":"short","use":"sig","crv":"P-256","x":"AAAA","y":"AAAA"},
              {"kty":"EC","kid":"k1","use":"sig","crv":"secp256k1","x":"AAAA","y":"AAAA"},
              {"kty":"RSA","kid":"r","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB"},
              "garbage"
            ]}"#,
            true,
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.get("a").unwrap().fits("HS256"));
        assert!(!set.get("a").unwrap().fits("RS256"));
        let r = set.get("r").unwrap();
        assert!(r.fits("RS256"));
        assert!(!r.fits("PS256"), "the key's own alg binds it");
        assert!(set.get("enc").is_none());
        assert_eq!(
            format!("{:?}", set.get("a").unwrap().material),
            "oct",
            "shared secrets never reach a log line"
        );
    }

    #[test]
    fn builds_der_keys_only_for_a_backend_that_reads_them() {
        let jwks = include_bytes!("../../tests/keys/jwks.json");
        let (with, without) = (
            KeySet::parse(jwks, true).unwrap(),
            KeySet::parse(jwks, false).unwrap(),
        );
        assert_eq!(with.len(), without.len());
        assert!(with.keys.iter().any(|k| k.spki.is_some()));
        assert!(without.keys.iter().all(|k| k.spki.is_none()));
    }

    #[test]
    fn refuses_what_is_not_a_set() {
        assert_eq!(KeySet::parse(b"[]", true), Err(JwkError::NotAKeySet));
        assert_eq!(KeySet::parse(b"{}", true), Err(JwkError::NotAKeySet));
        assert_eq!(KeySet::parse(b"<html>", true), Err(JwkError::NotAKeySet));
        assert!(KeySet::parse(br#"{"keys":[]}"#, true).unwrap().is_empty());
    }

    /// Go's decoder skips fields it does not know without converting them (fuzzing found both).
    #[test]
    fn fields_outside_keys_are_skipped_unread() {
        let key = br#"{"kty":"oct","kid":"a","use":"sig","k":"c2VjcmV0"}"#;
        for extra in [&b"1e999"[..], b"\"\xff\""] {
            let doc = [&b"{\"x\":"[..], extra, b",\"keys\":[", key, b"]}"].concat();
            assert_eq!(KeySet::parse(&doc, true).unwrap().len(), 1);
        }
    }
}
