//! Signing keys for the `id_token` mutator: the first private key of a JWKS (as Oathkeeper picks
//! it), its algorithm from the key's own `alg` or its type, and the public half that upstreams
//! fetch to verify. jwt-simple imports the key strictly and signs; the claims are ours.

use super::crypto::Crypto;
use super::der::{self, Curve};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// Private JWK members: what the published public key must not carry.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

enum Key {
    Es256(ES256KeyPair),
    Es384(ES384KeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RS256KeyPair),
    Rs384(RS384KeyPair),
    Rs512(RS512KeyPair),
    Ps256(PS256KeyPair),
    Ps384(PS384KeyPair),
    Ps512(PS512KeyPair),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

pub struct Signer {
    key: Key,
    /// The private key as DER PKCS#8 for a host signer (RS*, ES*), built once.
    pkcs8: Option<Arc<[u8]>>,
    /// The `kid` the header names.
    kid: Option<String>,
    pub alg: &'static str,
    /// The public JWK, `None` for a shared secret (which is never published).
    pub public: Option<Value>,
}

impl fmt::Debug for Signer {
    // Private keys never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.alg)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerError {
    NotAKeySet,
    NoPrivateKey,
    /// The key's type or `alg` is not one we sign with.
    Unsupported(String),
    /// jwt-simple refused the key (incomplete, inconsistent, or not canonical).
    InvalidKey(String),
    Sign(String),
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignerError::NotAKeySet => {
                f.write_str("the document is not a JWKS (no \"keys\" array)")
            }
            SignerError::NoPrivateKey => f.write_str("the JWKS holds no private key"),
            SignerError::Unsupported(what) => write!(f, "cannot sign with {what}"),
            SignerError::InvalidKey(why) => write!(f, "the private key is not usable: {why}"),
            SignerError::Sign(why) => write!(f, "signing failed: {why}"),
        }
    }
}

impl std::error::Error for SignerError {}

/// jwt-simple's JWT header, field for field.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    typ: &'a str,
}

/// The PKCS#8 DER of a key a host can sign with, from its JWK (which jwt-simple has accepted).
fn host_key(alg: &str, jwk: &Map<String, Value>) -> Option<Arc<[u8]>> {
    let field = |k: &str| {
        let text = jwk.get(k)?.as_str()?.trim_end_matches('=');
        URL_SAFE_NO_PAD.decode(text).ok().filter(|v| !v.is_empty())
    };
    let ec = |curve| {
        let (d, x, y) = (field("d")?, field("x")?, field("y")?);
        Some(der::pkcs8_ec(curve, &d, &[&[4u8][..], &x, &y].concat()))
    };
    let der = match alg {
        "RS256" | "RS384" | "RS512" => {
            let parts = ["n", "e", "d", "p", "q", "dp", "dq", "qi"].map(field);
            let [Some(n), Some(e), Some(d), Some(p), Some(q), Some(dp), Some(dq), Some(qi)] = parts
            else {
                return None;
            };
            der::pkcs8_rsa([&n, &e, &d, &p, &q, &dp, &dq, &qi])
        }
        "ES256" => ec(Curve::P256)?,
        "ES384" => ec(Curve::P384)?,
        _ => return None,
    };
    Some(Arc::from(der))
}

fn is_private(jwk: &Map<String, Value>) -> bool {
    jwk.contains_key("d") || jwk.get("kty").and_then(Value::as_str) == Some("oct")
}

impl Signer {
    /// The first private key of the JWKS document.
    pub fn from_jwks(doc: &[u8]) -> Result<Signer, SignerError> {
        let parsed: Value = serde_json::from_slice(doc).map_err(|_| SignerError::NotAKeySet)?;
        let keys = parsed
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(SignerError::NotAKeySet)?;
        let jwk = keys
            .iter()
            .filter_map(Value::as_object)
            .find(|k| is_private(k))
            .ok_or(SignerError::NoPrivateKey)?;
        Signer::from_jwk(jwk)
    }

    fn from_jwk(jwk: &Map<String, Value>) -> Result<Signer, SignerError> {
        let text = |k: &str| jwk.get(k).and_then(Value::as_str).unwrap_or_default();
        let kty = text("kty");
        let alg = match (text("alg"), kty, text("crv")) {
            ("", "EC", "P-256") => "ES256",
            ("", "EC", "P-384") => "ES384",
            ("", "OKP", "Ed25519") => "EdDSA",
            ("", "RSA", _) => "RS256",
            ("", "oct", _) => "HS256",
            ("", kty, crv) => {
                return Err(SignerError::Unsupported(format!("kty {kty:?} crv {crv:?}")))
            }
            (alg, _, _) => alg,
        };
        let doc = Value::Object(jwk.clone()).to_string();
        let bad = |e: jwt_simple::Error| SignerError::InvalidKey(e.to_string());
        let kid = text("kid");
        let secret = || {
            URL_SAFE_NO_PAD
                .decode(text("k"))
                .ok()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| SignerError::InvalidKey("k is not base64url".into()))
        };
        let (key, alg) = match alg {
            "ES256" => (
                Key::Es256(ES256KeyPair::from_jwk(&doc).map_err(bad)?),
                "ES256",
            ),
            "ES384" => (
                Key::Es384(ES384KeyPair::from_jwk(&doc).map_err(bad)?),
                "ES384",
            ),
            "EdDSA" => (
                Key::EdDsa(Ed25519KeyPair::from_jwk(&doc).map_err(bad)?),
                "EdDSA",
            ),
            "RS256" => (
                Key::Rs256(RS256KeyPair::from_jwk(&doc).map_err(bad)?),
                "RS256",
            ),
            "RS384" => (
                Key::Rs384(RS384KeyPair::from_jwk(&doc).map_err(bad)?),
                "RS384",
            ),
            "RS512" => (
                Key::Rs512(RS512KeyPair::from_jwk(&doc).map_err(bad)?),
                "RS512",
            ),
            "PS256" => (
                Key::Ps256(PS256KeyPair::from_jwk(&doc).map_err(bad)?),
                "PS256",
            ),
            "PS384" => (
                Key::Ps384(PS384KeyPair::from_jwk(&doc).map_err(bad)?),
                "PS384",
            ),
            "PS512" => (
                Key::Ps512(PS512KeyPair::from_jwk(&doc).map_err(bad)?),
                "PS512",
            ),
            "HS256" => (
                Key::Hs256(HS256Key::from_bytes(&secret()?).with_key_id(kid)),
                "HS256",
            ),
            "HS384" => (
                Key::Hs384(HS384Key::from_bytes(&secret()?).with_key_id(kid)),
                "HS384",
            ),
            "HS512" => (
                Key::Hs512(HS512Key::from_bytes(&secret()?).with_key_id(kid)),
                "HS512",
            ),
            other => return Err(SignerError::Unsupported(format!("alg {other:?}"))),
        };
        let public = (kty != "oct").then(|| {
            let mut p = jwk.clone();
            for m in PRIVATE_MEMBERS {
                p.remove(*m);
            }
            p.remove("key_ops");
            p.insert("alg".into(), Value::from(alg));
            p.insert("use".into(), Value::from("sig"));
            Value::Object(p)
        });
        let pkcs8 = host_key(alg, jwk);
        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
        Ok(Signer {
            key,
            pkcs8,
            kid,
            alg,
            public,
        })
    }

    /// A compact JWT over `claims`, exactly as given (the caller sets every registered claim),
    /// signed by `crypto` where it can, else by jwt-simple. Both write the same header and
    /// claims, so an RSA token is the same bytes either way.
    pub fn sign(
        &self,
        claims: Map<String, Value>,
        crypto: &dyn Crypto,
    ) -> Result<String, SignerError> {
        if let Some(pkcs8) = &self.pkcs8 {
            let header = Header {
                alg: self.alg,
                kid: self.kid.as_deref(),
                typ: "JWT",
            };
            let (Ok(header), Ok(body)) = (
                serde_json::to_vec(&header),
                serde_json::to_vec(&Value::Object(claims.clone())),
            ) else {
                return Err(SignerError::Sign("the claims do not serialise".into()));
            };
            let mut token = URL_SAFE_NO_PAD.encode(header);
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(body, &mut token);
            if let Some(signature) = crypto.sign(self.alg, pkcs8, &token) {
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature, &mut token);
                return Ok(token);
            }
        }
        let claims = JWTClaims {
            issued_at: None,
            expires_at: None,
            invalid_before: None,
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom: claims,
        };
        // One function per algorithm (`apart`), as in `crypto::rust_verify`.
        use super::apart;
        let signed = match &self.key {
            Key::Es256(k) => apart(|| k.sign(claims)),
            Key::Es384(k) => apart(|| k.sign(claims)),
            Key::EdDsa(k) => apart(|| k.sign(claims)),
            Key::Rs256(k) => apart(|| k.sign(claims)),
            Key::Rs384(k) => apart(|| k.sign(claims)),
            Key::Rs512(k) => apart(|| k.sign(claims)),
            Key::Ps256(k) => apart(|| k.sign(claims)),
            Key::Ps384(k) => apart(|| k.sign(claims)),
            Key::Ps512(k) => apart(|| k.sign(claims)),
            Key::Hs256(k) => apart(|| k.authenticate(claims)),
            Key::Hs384(k) => apart(|| k.authenticate(claims)),
            Key::Hs512(k) => apart(|| k.authenticate(claims)),
        };
        signed.map_err(|e| SignerError::Sign(e.to_string()))
    }
}
