//! `id_token`: hands the upstream a JWT about the session, signed with the first private key of
//! `jwks_url` (inline as `base64://…`, or fetched by callout like any JWKS), in
//! `Authorization: Bearer …`. Claims: the `claims` template first, then `exp`, `jti`, `iat`,
//! `iss`, `nbf` and `sub` set here so a template cannot spoof them. A signed token is reused
//! until less than a tenth of its ttl remains.

use super::Caches;
use crate::cache::digest::{Digest, Hasher};
use crate::cache::jwks::JwksRegistry;
use crate::cache::jwks::JwksStore;
use crate::config::clusters::Clusters;
use crate::config::duration::parse_ms;
use crate::jose::signer::Signer;
use crate::template::Template;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    jwks_url: String,
    issuer_url: String,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    claims: Option<String>,
}

/// Oathkeeper's schema default.
const DEFAULT_TTL_MS: u64 = 15 * 60 * 1000;

/// Where the signing key comes from.
#[derive(Debug, Clone)]
pub enum Keys {
    Inline(Rc<Signer>),
    /// A JWKS source the root context fetches.
    Fetched(usize),
}

#[derive(Debug, Clone)]
pub struct IdToken {
    pub keys: Keys,
    issuer: String,
    ttl_ms: u64,
    claims: Option<Template>,
    /// Issuer, ttl and key source: with the claims and subject, the token cache's key.
    tag: Digest,
}

/// A signed token and when it expires.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub exp_ms: u64,
}

impl IdToken {
    pub fn build(
        config: Value,
        clusters: &Clusters,
        registry: &mut JwksRegistry,
    ) -> Result<IdToken, String> {
        let raw: RawConfig = serde_json::from_value(config).map_err(|e| e.to_string())?;
        let keys = if let Some(encoded) = raw.jwks_url.strip_prefix("base64://") {
            let doc = STANDARD
                .decode(encoded.trim())
                .map_err(|_| "jwks_url: the base64:// document is not base64".to_string())?;
            Keys::Inline(Rc::new(
                Signer::from_jwks(&doc).map_err(|e| format!("jwks_url: {e}"))?,
            ))
        } else if raw.jwks_url.starts_with("file://") {
            return Err(
                "jwks_url: the filter cannot read files; inline the JWKS as base64://<base64 of the document> or serve it over http(s)"
                    .into(),
            );
        } else {
            Keys::Fetched(registry.register(&raw.jwks_url, clusters)?)
        };
        if raw.issuer_url.is_empty() {
            return Err("issuer_url: must be set".into());
        }
        let ttl_ms = match &raw.ttl {
            None => DEFAULT_TTL_MS,
            Some(t) => parse_ms(t)
                .filter(|t| *t >= 1000)
                .ok_or_else(|| format!("ttl: {t:?} is not a duration of at least 1s"))?,
        };
        let claims = match raw.claims.as_deref() {
            None | Some("") => None,
            Some(c) => Some(Template::compile(c).map_err(|e| format!("claims: {e}"))?),
        };
        let mut h = Hasher::default();
        h.field(raw.issuer_url.as_bytes())
            .field(&ttl_ms.to_le_bytes())
            .field(raw.jwks_url.as_bytes());
        Ok(IdToken {
            keys,
            issuer: raw.issuer_url,
            ttl_ms,
            claims,
            tag: h.finish(),
        })
    }

    /// The signer, parsed again only when the fetched JWKS changed.
    pub fn signer(
        &self,
        caches: &mut Caches,
        jwks: &JwksStore,
    ) -> Result<Rc<Signer>, PipelineError> {
        let source = match &self.keys {
            Keys::Inline(s) => return Ok(Rc::clone(s)),
            Keys::Fetched(source) => *source,
        };
        let Some((version, doc)) = jwks.document(source) else {
            return Err(PipelineError::Unavailable(
                "the id_token signing keys have not been fetched yet".into(),
            ));
        };
        if let Some((v, s)) = caches.signers.get(&source) {
            if *v == version {
                return Ok(Rc::clone(s));
            }
        }
        let signer = Rc::new(
            Signer::from_jwks(&doc)
                .map_err(|e| PipelineError::Internal(format!("id_token jwks_url: {e}")))?,
        );
        caches.signers.insert(source, (version, Rc::clone(&signer)));
        Ok(signer)
    }

    pub fn mutate(
        &self,
        session: &mut Session<'_>,
        now_ms: u64,
        caches: &mut Caches,
        jwks: &JwksStore,
    ) -> Result<(), PipelineError> {
        let rendered = match &self.claims {
            None => String::new(),
            Some(t) => t
                .render(&*session)
                .map_err(|e| PipelineError::Internal(format!("id_token claims: {e}")))?,
        };
        let mut h = Hasher::default();
        h.field(&self.tag)
            .field(rendered.as_bytes())
            .field(session.subject.as_bytes());
        let key = h.finish();
        let fresh_until = |m: &Minted| m.exp_ms.saturating_sub(self.ttl_ms / 10);
        if let Some(m) = caches.id_tokens.get(&key, now_ms) {
            if now_ms < fresh_until(m) {
                session
                    .header
                    .set("authorization", format!("Bearer {}", m.token));
                return Ok(());
            }
        }
        let mut claims = match rendered.trim() {
            "" => Map::new(),
            text => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(PipelineError::Internal(
                        "id_token claims: the template did not render a JSON object".into(),
                    ))
                }
            },
        };
        let now_s = now_ms / 1000;
        let exp_ms = now_ms + self.ttl_ms;
        claims.insert("exp".into(), Value::from(exp_ms / 1000));
        claims.insert("jti".into(), Value::from(jti()));
        claims.insert("iat".into(), Value::from(now_s));
        claims.insert("iss".into(), Value::from(self.issuer.as_str()));
        claims.insert("nbf".into(), Value::from(now_s));
        claims.insert("sub".into(), Value::from(session.subject.as_str()));
        let token = self
            .signer(caches, jwks)?
            .sign(claims, &*jwks.crypto)
            .map_err(|e| PipelineError::Internal(format!("id_token: {e}")))?;
        let minted = Minted {
            token: token.clone(),
            exp_ms,
        };
        let bytes = 64 + token.len();
        caches.id_tokens.insert(key, minted, bytes, exp_ms);
        session
            .header
            .set("authorization", format!("Bearer {token}"));
        Ok(())
    }
}

/// A random UUID (version 4): SipHash under the process's random keys, which std seeds from
/// the host's randomness (WASI `random_get`) and steps for every `RandomState`.
fn jti() -> String {
    let a = RandomState::new().hash_one(0u8);
    let b = RandomState::new().hash_one(1u8);
    let mut v = (u128::from(a) << 64) | u128::from(b);
    v = (v & !(0xf << 76)) | (0x4 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn jti_is_a_fresh_uuid_v4() {
        let (a, b) = (super::jti(), super::jti());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }
}
