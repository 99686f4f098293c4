//! `id_token`: hands the upstream a JWT about the session, signed with the first private key of
//! `jwks_url` (inline as `base64://…`, or fetched by callout like any JWKS), in
//! `Authorization: Bearer …`. Claims: the `claims` template first, then `exp`, `jti`, `iat`,
//! `iss`, `nbf` and `sub` set here so a template cannot spoof them. A signed token is reused
//! until less than a tenth of its ttl remains.

use super::{Caches, Ctx, Mutate, MutateStep};
use crate::cache::digest::{Digest, Hasher};
use crate::cache::jwks::{JwksRegistry, JwksStore};
use crate::cache::place::Place;
use crate::cache::weigh::Weigh;
use crate::config::clusters::Clusters;
use crate::config::duration::parse_ms;
use crate::config::{Invalid, Kind};
use crate::jose::signer::{Signer, SignerError};
use crate::template::Template;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

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
enum Keys {
    Inline(Arc<Signer>),
    /// A JWKS source the root context fetches.
    Fetched(usize),
}

#[derive(Debug, Clone)]
pub struct IdToken {
    keys: Keys,
    issuer: String,
    ttl_ms: u64,
    claims: Option<Template>,
    /// Issuer, ttl and key source: with the claims and subject, the token cache's key.
    tag: Digest,
}

/// Why no token was signed.
#[derive(Debug)]
pub enum IdTokenError {
    NotFetched,
    /// The fetched key set holds no usable private key.
    Keys(SignerError),
    ClaimsNotAnObject,
    Sign(SignerError),
}

impl std::fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdTokenError::NotFetched => {
                f.write_str("the id_token signing keys have not been fetched yet")
            }
            IdTokenError::Keys(e) => write!(f, "id_token jwks_url: {e}"),
            IdTokenError::ClaimsNotAnObject => {
                f.write_str("id_token claims: the template did not render a JSON object")
            }
            IdTokenError::Sign(e) => write!(f, "id_token: {e}"),
        }
    }
}

impl std::error::Error for IdTokenError {}

/// A signed token and when it expires.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub exp_ms: u64,
}

impl Weigh for Minted {
    fn bytes(&self) -> usize {
        self.token.bytes() + 8
    }
}

pub fn build(
    config: Value,
    clusters: &Clusters,
    jwks: &mut JwksRegistry,
) -> Result<Arc<dyn Mutate>, Invalid> {
    Ok(Arc::new(IdToken::build(config, clusters, jwks)?))
}

impl Mutate for IdToken {
    fn start(self: Arc<Self>, session: &mut Session<'_>, ctx: &mut Ctx<'_>) -> MutateStep {
        self.mutate(session, ctx.now_ms, ctx.caches, ctx.jwks)
            .into()
    }

    fn header_names(&self) -> Vec<&str> {
        Vec::new()
    }

    fn signs(&self) -> bool {
        true
    }

    fn public_key(&self, ctx: &mut Ctx<'_>) -> Option<Value> {
        self.signer(ctx.caches, ctx.jwks).ok()?.public.clone()
    }
}

impl IdToken {
    pub fn build(
        config: Value,
        clusters: &Clusters,
        registry: &mut JwksRegistry,
    ) -> Result<IdToken, Invalid> {
        let raw: RawConfig = serde_json::from_value(config).map_err(Invalid::shape)?;
        let keys = if let Some(encoded) = raw.jwks_url.strip_prefix("base64://") {
            let doc = STANDARD.decode(encoded.trim()).map_err(|_| {
                Invalid::new(
                    "jwks_url",
                    Kind::Explained("the base64:// document is not base64"),
                )
            })?;
            Keys::Inline(Arc::new(
                Signer::from_jwks(&doc)
                    .map_err(|e| Invalid::new("jwks_url", Kind::Parse(e.to_string())))?,
            ))
        } else if raw.jwks_url.starts_with("file://") {
            return Err(Invalid::new(
                "jwks_url",
                Kind::Explained(
                    "the filter cannot read files; inline the JWKS as base64://<base64 of the document> or serve it over http(s)",
                ),
            ));
        } else {
            Keys::Fetched(registry.register(&raw.jwks_url, clusters)?)
        };
        if raw.issuer_url.is_empty() {
            return Err(Invalid::new("issuer_url", Kind::Missing));
        }
        let ttl_ms = match &raw.ttl {
            None => DEFAULT_TTL_MS,
            Some(t) => parse_ms(t).filter(|t| *t >= 1000).ok_or_else(|| {
                Invalid::new(
                    "ttl",
                    Kind::TooShort {
                        value: t.clone(),
                        minimum: "1s",
                    },
                )
            })?,
        };
        let claims = match raw.claims.as_deref() {
            None | Some("") => None,
            Some(c) => Some(Template::compile(c).map_err(|e| Invalid::new("claims", e.into()))?),
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
    fn signer(
        &self,
        caches: &mut Caches,
        jwks: &mut Place<JwksStore>,
    ) -> Result<Arc<Signer>, PipelineError> {
        let source = match &self.keys {
            Keys::Inline(s) => return Ok(Arc::clone(s)),
            Keys::Fetched(source) => *source,
        };
        let document = jwks.get().document(source);
        let Some((version, doc)) = document else {
            return Err(PipelineError::unavailable(IdTokenError::NotFetched));
        };
        if let Some((v, s)) = caches.signers.get(&source) {
            if *v == version {
                return Ok(Arc::clone(s));
            }
        }
        let signer = Arc::new(
            Signer::from_jwks(&doc).map_err(|e| PipelineError::internal(IdTokenError::Keys(e)))?,
        );
        caches
            .signers
            .insert(source, (version, Arc::clone(&signer)));
        Ok(signer)
    }

    fn mutate(
        &self,
        session: &mut Session<'_>,
        now_ms: u64,
        caches: &mut Caches,
        jwks: &mut Place<JwksStore>,
    ) -> Result<(), PipelineError> {
        let rendered = match &self.claims {
            None => String::new(),
            Some(t) => t
                .render(&*session)
                .map_err(|e| PipelineError::internal(e.rendering("id_token claims")))?,
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
                _ => return Err(PipelineError::internal(IdTokenError::ClaimsNotAnObject)),
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
        let signer = self.signer(caches, jwks)?;
        let crypto = jwks.get().crypto.clone();
        let token = signer
            .sign(claims, &*crypto)
            .map_err(|e| PipelineError::internal(IdTokenError::Sign(e)))?;
        let minted = Minted {
            token: token.clone(),
            exp_ms,
        };
        caches.id_tokens.insert(key, minted, exp_ms);
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
