//! `oauth2_client_credentials`: a caller sends its OAuth 2.0 client id and secret as HTTP Basic;
//! they are valid when the token endpoint grants them a token (with `required_scope`). The
//! subject is the client id. Answers can be cached, never beyond the token's expiry.

use super::grant::{self, Grant};
use super::{
    parse, session_store, settle, through_cache, Authenticate, AuthnStep, Ctx, Input, Then,
};
use crate::cache::digest::Hasher;
use crate::cache::jwks::JwksRegistry;
use crate::cache::session::{Key, Outcome};
use crate::config::cache_section::CacheSection;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::vocab::callout::CalloutResult;
use crate::vocab::callout::Target;
use crate::vocab::percent::query_unescape;
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::Headers;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    token_url: String,
    #[serde(default)]
    required_scope: Vec<String>,
    #[serde(default)]
    cache: CacheSection,
    /// Accepted: Envoy's cluster owns retries and timeouts here.
    #[serde(default, rename = "retry")]
    _retry: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone)]
pub struct ClientCredentials {
    target: Target,
    token_url: String,
    scopes: Vec<String>,
    /// `None`: answers are not cached. `Some(None)`: cached until the token expires.
    cache_ttl_ms: Option<Option<u64>>,
}

/// Basic credentials that Go's `QueryUnescape` refuses.
#[derive(Debug)]
pub struct NotEscaped;

impl std::fmt::Display for NotEscaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client credentials are not correctly escaped")
    }
}

impl std::error::Error for NotEscaped {}

/// HTTP Basic credentials, as Go's `Request.BasicAuth` reads them.
fn basic(headers: &Headers) -> Option<(String, String)> {
    let value = headers.get("authorization")?;
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

pub fn build(
    config: serde_json::Value,
    clusters: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(ClientCredentials::build(
        parse(config)?,
        clusters,
    )?))
}

impl ClientCredentials {
    pub fn build(raw: RawConfig, clusters: &Clusters) -> Result<ClientCredentials, Invalid> {
        let target = clusters
            .resolve(&raw.token_url)
            .map_err(|e| e.at("token_url"))?;
        Ok(ClientCredentials {
            target,
            token_url: raw.token_url,
            scopes: raw.required_scope,
            cache_ttl_ms: raw.cache.lifetime()?,
        })
    }

    /// The caller's client id and secret; `None` when it sent no Basic credentials.
    fn credentials(input: &Input<'_>) -> Option<Result<(String, String), PipelineError>> {
        let (user, pass) = basic(&input.request.headers)?;
        let invalid = || PipelineError::unauthorized(NotEscaped);
        Some(
            query_unescape(&user)
                .zip(query_unescape(&pass))
                .ok_or_else(invalid),
        )
    }

    /// The token URL, the scopes and the credentials: what the endpoint's answer depends on.
    fn key(&self, id: &str, secret: &str) -> Key {
        let mut h = Hasher::default();
        h.field(b"oauth2_client_credentials")
            .field(self.token_url.as_bytes());
        for s in &self.scopes {
            h.field(s.as_bytes());
        }
        h.field(id.as_bytes()).field(secret.as_bytes());
        h.finish()
    }

    /// The grant's answer for the client `client_id`.
    fn resume(
        &self,
        client_id: String,
        key: &Key,
        result: CalloutResult,
        ctx: &mut Ctx<'_>,
    ) -> AuthnStep {
        let (outcome, until) = match grant::judge(result) {
            Ok(Grant { usable_ms, .. }) => {
                let until = self
                    .cache_ttl_ms
                    .map(|ttl| ctx.now_ms + ttl.map_or(usable_ms, |t| t.min(usable_ms)));
                (
                    Outcome::Session {
                        subject: client_id,
                        extra: Arc::new(serde_json::Value::Null),
                    },
                    until,
                )
            }
            Err(e) => (Outcome::Rejected(e), None),
        };
        settle(ctx, key, outcome, until)
    }
}

impl Authenticate for ClientCredentials {
    fn start(self: Arc<Self>, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        let (id, secret) = match Self::credentials(input) {
            None => return AuthnStep::NotResponsible,
            Some(Err(e)) => return AuthnStep::Rejected(e),
            Some(Ok(c)) => c,
        };
        let key = self.key(&id, &secret);
        through_cache(
            ctx,
            &key,
            self.cache_ttl_ms.is_some(),
            self.target.timeout_ms,
            |_| {
                let request = grant::Request {
                    client_id: &id,
                    client_secret: &secret,
                    scopes: &self.scopes,
                    audience: None,
                };
                let callout = grant::callout(&self.target, &request);
                let then = Then::new(key, move |result, ctx| self.resume(id, &key, result, ctx));
                AuthnStep::Call(callout, then)
            },
        )
    }

    fn session_cache_entries(&self) -> usize {
        session_store::DEFAULT_MAX_ENTRIES
    }
}
