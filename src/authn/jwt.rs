//! `jwt`: bearer JWTs verified against JWKS fetched by callout. Every cheap rejection runs
//! before any signature math (structure, algorithm, time claims, audience, issuer, scope, key
//! id). Verified tokens are cached, keyed by the whole token, until `exp` or until their key leaves (or changes
//! in) the JWKS, and the claim checks run again on every hit.

use super::token::TokenFrom;
use super::{parse, Authenticate, AuthnStep, Ctx, Input};
use crate::cache::jwks::{JwksRegistry, Missing};
use crate::cache::weigh::{json_bytes, Weigh};
use crate::config::clusters::Clusters;
use crate::config::{Invalid, Kind};
use crate::jose::claims::{self, Rules};
use crate::jose::jwk::Jwk;
use crate::jose::scope::Strategy;
use crate::jose::token::{Parsed, TokenError};
use crate::vocab::rejection::{PipelineError, Reason, WithClaims};
use crate::vocab::session::Query;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Verified tokens without `exp` are trusted from the cache this long.
const NO_EXP_CACHE_MS: u64 = 300_000;
/// Clock skew tolerated on `nbf` and `iat` (a token the IdP just issued must not fail because
/// the proxy's clock is a little behind). `exp` gets none: an expired token is never accepted.
pub const SKEW_MS: u64 = 60_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub jwks_urls: Vec<String>,
    #[serde(default)]
    pub allowed_algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub required_scope: Vec<String>,
    #[serde(default)]
    pub scope_strategy: Option<String>,
    #[serde(default)]
    pub target_audience: Vec<String>,
    #[serde(default)]
    pub trusted_issuers: Vec<String>,
    #[serde(default)]
    pub token_from: Option<TokenFrom>,
    /// Read from the global config only (see `config::compile`), as Oathkeeper does; accepted
    /// here and ignored.
    #[serde(default, rename = "jwks_max_wait")]
    _jwks_max_wait: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "jwks_ttl")]
    _jwks_ttl: Option<serde::de::IgnoredAny>,
}

/// A token whose signature checked out, and the key that checked it. The cache is per VM, not
/// per rule: a hit counts only for a rule that trusts the same JWKS and algorithm.
#[derive(Debug, Clone)]
pub struct Verified {
    subject: String,
    claims: Arc<Value>,
    source: usize,
    /// The key itself, not only its id: a kid republished with other material voids the entry.
    key: Jwk,
    alg: String,
}

impl Weigh for Verified {
    fn bytes(&self) -> usize {
        // The key that verified it: an RSA modulus is at most 512 bytes.
        576 + self.subject.len() + json_bytes(&self.claims) + self.alg.len()
    }
}

/// Algorithms this build verifies.
const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

#[derive(Debug, Clone)]
pub struct Jwt {
    /// Indexes into the filter's JWKS sources.
    sources: Vec<usize>,
    rules: Rules,
    token_from: Option<TokenFrom>,
    max_wait_ms: u64,
}

pub fn build(
    config: serde_json::Value,
    clusters: &Clusters,
    jwks: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(Jwt::build(parse(config)?, clusters, jwks)?))
}

impl Authenticate for Jwt {
    fn start(self: Arc<Self>, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        self.verify(input, ctx)
    }

    fn session_cache_entries(&self) -> usize {
        0
    }
}

impl Jwt {
    pub fn build(
        raw: RawConfig,
        clusters: &Clusters,
        registry: &mut JwksRegistry,
    ) -> Result<Jwt, Invalid> {
        if raw.jwks_urls.is_empty() {
            return Err(Invalid::whole(Kind::Explained(
                "jwks_urls must list at least one URL",
            )));
        }
        if let Some(t) = &raw.token_from {
            t.validate()?;
        }
        let sources = raw
            .jwks_urls
            .iter()
            .map(|url| registry.register(url, clusters))
            .collect::<Result<Vec<_>, _>>()?;
        let allowed_algorithms = raw
            .allowed_algorithms
            .unwrap_or_else(|| vec!["RS256".to_string()]);
        if let Some(a) = allowed_algorithms
            .iter()
            .find(|a| !ALGORITHMS.contains(&a.as_str()))
        {
            return Err(Invalid::new(
                "allowed_algorithms",
                Kind::NotOneOf {
                    value: a.clone(),
                    accepted: format!("one of {}", ALGORITHMS.join(", ")),
                },
            ));
        }
        let strategy = raw.scope_strategy.as_deref().unwrap_or("none");
        let scope_strategy = Strategy::parse(strategy).ok_or_else(|| {
            Invalid::new(
                "scope_strategy",
                Kind::NotOneOf {
                    value: strategy.to_string(),
                    accepted: "none, exact, hierarchic or wildcard".into(),
                },
            )
        })?;
        Ok(Jwt {
            sources,
            rules: Rules {
                allowed_algorithms,
                trusted_issuers: raw.trusted_issuers,
                target_audience: raw.target_audience,
                required_scope: raw.required_scope,
                scope_strategy,
                skew_ms: SKEW_MS,
            },
            token_from: raw.token_from,
            max_wait_ms: registry.max_wait_ms,
        })
    }

    /// The token's verdict: from the verified-token cache, or checked and verified now.
    fn verify(&self, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        let Some(token) = super::token::extract(
            self.token_from.as_ref(),
            &input.request.headers,
            Query(input.query),
        ) else {
            return AuthnStep::NotResponsible;
        };
        if let Some(step) = self.cached(&token, ctx) {
            return step;
        }
        let parsed = match Parsed::parse(&token) {
            Ok(p) => p,
            Err(TokenError::NotAJwt) => return AuthnStep::NotResponsible,
            Err(e) => return reject(e),
        };
        if let Err(e) = self.rules.algorithm_allowed(&parsed.alg) {
            return reject_with(e, &parsed.claims);
        }
        let Some(kid) = parsed.kid.as_deref() else {
            return reject_with(TokenError::MissingKid, &parsed.claims);
        };
        if let Err(e) = self.rules.check(&parsed.claims, ctx.now_ms) {
            return reject_with(e, &parsed.claims);
        }
        // The key set and the verifier are taken out: the check runs without the store held.
        let (found, crypto) = {
            let jwks = ctx.jwks.get();
            let found = self.sources.iter().find_map(|&s| {
                let keys = jwks.keys(s)?;
                keys.get(kid).is_some().then(|| (s, Arc::clone(keys)))
            });
            (found, jwks.crypto.clone())
        };
        let Some((source, jwk)) = found
            .as_ref()
            .and_then(|(s, keys)| keys.get(kid).map(|k| (*s, k)))
        else {
            return match self.missing_key(kid, ctx) {
                AuthnStep::Rejected(PipelineError::Unauthorized(Some(reason))) => {
                    AuthnStep::Rejected(with_claims(reason, &parsed.claims))
                }
                step => step,
            };
        };
        if let Err(e) = parsed.verify(&token, jwk, ctx.now_ms / 1000, SKEW_MS / 1000, &*crypto) {
            return reject_with(e, &parsed.claims);
        }
        let mut claims = parsed.claims;
        claims::normalize_scope(&mut claims);
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let until = claims
            .get("exp")
            .and_then(Value::as_f64)
            .map_or(ctx.now_ms + NO_EXP_CACHE_MS, |exp| (exp * 1000.0) as u64);
        let claims = Arc::new(Value::Object(claims));
        let verified = Verified {
            subject: subject.clone(),
            claims: Arc::clone(&claims),
            source,
            key: jwk.clone(),
            alg: parsed.alg.clone(),
        };
        ctx.caches.tokens.insert(Arc::from(token), verified, until);
        AuthnStep::Authenticated {
            subject,
            extra: claims,
        }
    }

    /// The answer for a token verified before, if it counts for this rule: the same JWKS, an
    /// allowed algorithm, a key still published. The claim checks run again.
    fn cached(&self, key: &str, ctx: &mut Ctx<'_>) -> Option<AuthnStep> {
        let Some(v) = ctx.caches.tokens.get(key, ctx.now_ms) else {
            ctx.stats.token_misses += 1;
            return None;
        };
        if !self.sources.contains(&v.source) || self.rules.algorithm_allowed(&v.alg).is_err() {
            return None;
        }
        let published = ctx
            .jwks
            .get()
            .keys(v.source)
            .is_some_and(|ks| ks.get(&v.key.kid) == Some(&v.key));
        if !published {
            ctx.caches.tokens.remove(key);
            return None;
        }
        let checked = match v.claims.as_object() {
            Some(c) => self.rules.check(c, ctx.now_ms),
            None => Ok(()),
        };
        let step = match checked {
            Ok(()) => AuthnStep::Authenticated {
                subject: v.subject.clone(),
                extra: Arc::clone(&v.claims),
            },
            Err(e) => {
                AuthnStep::Rejected(PipelineError::Unauthorized(Some(Arc::new(WithClaims {
                    reason: Arc::new(e),
                    claims: Arc::clone(&v.claims),
                }))))
            }
        };
        ctx.stats.token_hits += 1;
        Some(step)
    }

    /// No published key fits: wait for the first keys or for one refetch, else refuse.
    fn missing_key(&self, kid: &str, ctx: &mut Ctx<'_>) -> AuthnStep {
        let deadline = ctx.started_ms.saturating_add(self.max_wait_ms);
        let mut jwks = ctx.jwks.get();
        let any_keys = self.sources.iter().any(|&s| jwks.keys(s).is_some());
        let mut wait = false;
        for &s in &self.sources {
            wait |= jwks.missing(s, ctx.waiter, deadline, ctx.now_ms) == Missing::Wait;
        }
        drop(jwks);
        if wait {
            AuthnStep::Wait
        } else if any_keys {
            reject(KeyError::UnknownKid(kid.to_string()))
        } else {
            AuthnStep::Rejected(PipelineError::unavailable(KeyError::NoKeys))
        }
    }
}

fn reject(reason: impl std::error::Error + Send + Sync + 'static) -> AuthnStep {
    AuthnStep::Rejected(PipelineError::unauthorized(reason))
}

/// A token that parses but is refused: the rejection carries its unverified claims, as
/// Oathkeeper's `details.jwt_claims` (shown only where the configuration allows).
fn reject_with(
    reason: impl std::error::Error + Send + Sync + 'static,
    claims: &Map<String, Value>,
) -> AuthnStep {
    AuthnStep::Rejected(with_claims(Arc::new(reason), claims))
}

fn with_claims(reason: Reason, claims: &Map<String, Value>) -> PipelineError {
    PipelineError::Unauthorized(Some(Arc::new(WithClaims {
        reason,
        claims: Arc::new(Value::Object(claims.clone())),
    })))
}

/// No published key can verify the token.
#[derive(Debug)]
pub enum KeyError {
    UnknownKid(String),
    /// No key set could be fetched before the request's wait ran out.
    NoKeys,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::UnknownKid(kid) => write!(
                f,
                "JSON Web Key ID \"{kid}\" with use \"sig\" could not be found in any of the configured JSON Web Key Sets"
            ),
            KeyError::NoKeys => f.write_str("the JSON Web Key Sets could not be fetched in time"),
        }
    }
}

impl std::error::Error for KeyError {}
