//! `oauth2_introspection`: asks an RFC 7662 endpoint about an opaque token (optionally with a
//! client-credentials token of portcullis' own, `pre_authorization`: two chained callouts), then
//! runs Oathkeeper's checks in its order: token_use, active, exp, aud, iss, scope.

use super::grant::{self, Grant};
use super::token::{self, TokenFrom};
use super::{
    parse, session_store, settle, through_cache, Authenticate, AuthnStep, Ctx, Input, Then,
};
use crate::cache::digest::{digest, Digest, Hasher};
use crate::cache::jwks::JwksRegistry;
use crate::cache::session::{Key, Outcome};
use crate::config::cache_section::CacheSection;
use crate::config::clusters::Clusters;
use crate::config::{Invalid, Kind};
use crate::jose::scope::Strategy;
use crate::vocab::callout::{Callout, CalloutResult, Target};
use crate::vocab::effect::{valid_header_name, valid_header_value};
use crate::vocab::percent::query_escape;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Query;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    introspection_url: String,
    #[serde(default)]
    scope_strategy: Option<String>,
    #[serde(default)]
    required_scope: Vec<String>,
    #[serde(default)]
    target_audience: Vec<String>,
    #[serde(default)]
    trusted_issuers: Vec<String>,
    #[serde(default)]
    pre_authorization: Option<RawPreAuthorization>,
    #[serde(default)]
    token_from: Option<TokenFrom>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    preserve_host: bool,
    #[serde(default)]
    introspection_request_headers: BTreeMap<String, String>,
    #[serde(default)]
    cache: CacheSection,
    /// Accepted: Envoy's cluster owns retries and timeouts here.
    #[serde(default, rename = "retry")]
    _retry: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreAuthorization {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
}

/// How long an answer without `exp` is cached when `cache.ttl` does not say.
const DEFAULT_TTL_MS: u64 = 60_000;

#[derive(Debug, Clone)]
struct PreAuthorization {
    target: Target,
    client_id: String,
    client_secret: String,
    audience: Option<String>,
    scope: Vec<String>,
    /// The grant cache's key: everything the token endpoint's answer depends on.
    key: Digest,
}

/// Why the introspection endpoint's answer authenticates nobody (Oathkeeper's texts).
#[derive(Debug)]
pub enum IntrospectionError {
    /// Any status but 200 and 429.
    Answered(u32),
    NotAnObject,
    TokenUse(String),
    Inactive,
    Expired,
    Audience(String),
    Issuer,
    Scope(String),
}

impl std::fmt::Display for IntrospectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntrospectionError::Answered(status @ 500..=599) => {
                write!(f, "the introspection endpoint answered {status}")
            }
            IntrospectionError::Answered(status) => {
                write!(
                    f,
                    "Introspection returned status code {status} but expected 200"
                )
            }
            IntrospectionError::NotAnObject => f.write_str(
                "the introspection endpoint answered with a body that is not a JSON object",
            ),
            IntrospectionError::TokenUse(used) => write!(
                f,
                "Use of introspected token is not an access token but \"{used}\""
            ),
            IntrospectionError::Inactive => f.write_str("Access token is not active"),
            IntrospectionError::Expired => f.write_str("Access token expired"),
            IntrospectionError::Audience(wanted) => {
                write!(
                    f,
                    "Token audience is not intended for target audience {wanted}"
                )
            }
            IntrospectionError::Issuer => {
                f.write_str("Token issuer does not match any trusted issuer")
            }
            IntrospectionError::Scope(needle) => write!(f, "Scope {needle} was not granted"),
        }
    }
}

impl std::error::Error for IntrospectionError {}

impl From<IntrospectionError> for PipelineError {
    fn from(e: IntrospectionError) -> PipelineError {
        match e {
            IntrospectionError::Answered(500..=599) => PipelineError::unavailable(e),
            IntrospectionError::Answered(_) | IntrospectionError::NotAnObject => {
                PipelineError::internal(e)
            }
            IntrospectionError::Inactive | IntrospectionError::Expired => {
                PipelineError::unauthorized(e)
            }
            IntrospectionError::TokenUse(_)
            | IntrospectionError::Audience(_)
            | IntrospectionError::Issuer
            | IntrospectionError::Scope(_) => PipelineError::forbidden(e),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Introspection {
    target: Target,
    strategy: Strategy,
    required_scope: Vec<String>,
    target_audience: Vec<String>,
    trusted_issuers: Vec<String>,
    pre_authorization: Option<PreAuthorization>,
    pub token_from: Option<TokenFrom>,
    pub prefix: String,
    preserve_host: bool,
    headers: Vec<(String, String)>,
    /// `None`: answers are not cached; `Some(None)`: until the token's `exp`.
    cache_ttl_ms: Option<Option<u64>>,
    /// Distinguishes configs in the cache key.
    config_tag: Digest,
}

pub fn build(
    config: serde_json::Value,
    clusters: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(Introspection::build(parse(config)?, clusters)?))
}

impl Introspection {
    pub fn build(raw: RawConfig, clusters: &Clusters) -> Result<Introspection, Invalid> {
        let target = clusters
            .resolve(&raw.introspection_url)
            .map_err(|e| e.at("introspection_url"))?;
        let strategy_name = raw.scope_strategy.as_deref().unwrap_or("none");
        let strategy = Strategy::parse(strategy_name).ok_or_else(|| {
            Invalid::new(
                "scope_strategy",
                Kind::NotOneOf {
                    value: strategy_name.to_string(),
                    accepted: "hierarchic, exact, wildcard or none".into(),
                },
            )
        })?;
        if let Some(t) = &raw.token_from {
            t.validate()?;
        }
        let pre_authorization = match raw.pre_authorization {
            Some(p) if p.enabled => {
                if p.client_id.is_empty() || p.client_secret.is_empty() || p.token_url.is_empty() {
                    return Err(Invalid::new(
                        "pre_authorization",
                        Kind::Explained(
                            "client_id, client_secret and token_url are required when it is enabled",
                        ),
                    ));
                }
                let target = clusters
                    .resolve(&p.token_url)
                    .map_err(|e| e.at("pre_authorization.token_url"))?;
                let mut h = Hasher::default();
                h.field(p.token_url.as_bytes())
                    .field(p.client_id.as_bytes())
                    .field(p.client_secret.as_bytes())
                    .field(p.audience.as_deref().unwrap_or_default().as_bytes());
                for s in &p.scope {
                    h.field(s.as_bytes());
                }
                Some(PreAuthorization {
                    target,
                    key: h.finish(),
                    client_id: p.client_id,
                    client_secret: p.client_secret,
                    audience: p.audience,
                    scope: p.scope,
                })
            }
            _ => None,
        };
        let mut headers = Vec::with_capacity(raw.introspection_request_headers.len());
        for (name, value) in raw.introspection_request_headers {
            if !valid_header_name(&name) || !valid_header_value(&value) {
                return Err(Invalid::new(
                    "introspection_request_headers",
                    Kind::NotAHeader(name),
                ));
            }
            headers.push((name.to_ascii_lowercase(), value));
        }
        let tag = serde_json::json!([
            raw.introspection_url,
            strategy_name,
            raw.required_scope,
            raw.target_audience,
            raw.trusted_issuers,
            raw.preserve_host,
            headers,
            pre_authorization.as_ref().map(|p| p.key.to_vec()),
        ]);
        Ok(Introspection {
            target,
            strategy,
            required_scope: raw.required_scope,
            target_audience: raw.target_audience,
            trusted_issuers: raw.trusted_issuers,
            pre_authorization,
            token_from: raw.token_from,
            prefix: raw.prefix,
            preserve_host: raw.preserve_host,
            headers,
            cache_ttl_ms: raw.cache.lifetime()?,
            config_tag: digest(tag.to_string().as_bytes()),
        })
    }

    fn token(&self, input: &Input<'_>) -> Option<String> {
        token::extract(
            self.token_from.as_ref(),
            &input.request.headers,
            Query(input.query),
        )
        .filter(|t| !t.is_empty() && t.starts_with(&self.prefix))
    }

    /// The config, the token and (with `preserve_host`) the host the endpoint is told about.
    fn key(&self, token: &str, input: &Input<'_>) -> Key {
        let mut h = Hasher::default();
        h.field(&self.config_tag).field(token.as_bytes());
        if self.preserve_host {
            h.field(input.request.authority.as_bytes());
        }
        h.finish()
    }

    /// The introspection call, or first the grant it needs. `authority` is the request's.
    fn next_call(
        self: Arc<Self>,
        token: String,
        authority: &str,
        key: Key,
        ctx: &mut Ctx<'_>,
    ) -> AuthnStep {
        let bearer = match &self.pre_authorization {
            None => None,
            Some(p) => match ctx.caches.grants.get(&p.key, ctx.now_ms) {
                Some(t) => Some(t.clone()),
                None => {
                    let request = grant::Request {
                        client_id: &p.client_id,
                        client_secret: &p.client_secret,
                        scopes: &p.scope,
                        audience: p.audience.as_deref(),
                    };
                    let callout = grant::callout(&p.target, &request);
                    let (authority, grant_key) = (authority.to_string(), p.key);
                    let then = Then::new(key, move |result, ctx| {
                        self.granted(result, grant_key, token, &authority, key, ctx)
                    });
                    return AuthnStep::Call(callout, then);
                }
            },
        };
        self.check(&token, authority, bearer, key)
    }

    /// The introspection call itself.
    fn check(
        self: Arc<Self>,
        token: &str,
        authority: &str,
        bearer: Option<String>,
        key: Key,
    ) -> AuthnStep {
        let callout = self.callout(token, authority, bearer);
        AuthnStep::Call(
            callout,
            Then::new(key, move |result, ctx| self.introspected(key, result, ctx)),
        )
    }

    fn callout(&self, token: &str, authority: &str, bearer: Option<String>) -> Callout {
        // Go's url.Values.Encode: keys sorted, values query-escaped.
        let mut body = String::new();
        if self.strategy == Strategy::None {
            body.push_str("scope=");
            body.push_str(&query_escape(&self.required_scope.join(" ")));
            body.push('&');
        }
        body.push_str("token=");
        body.push_str(&query_escape(token));
        let mut call = Callout::to(&self.target, "POST", self.target.path_and_query());
        for (name, value) in &self.headers {
            call.set_header(name, value.clone());
        }
        call.set_header(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        );
        if self.preserve_host {
            call.set_header("x-forwarded-host", authority.to_string());
        }
        if let Some(b) = bearer {
            call.set_header("authorization", format!("Bearer {b}"));
        }
        call.body = Some(body.into_bytes());
        call
    }

    /// The grant's answer: cached, then the introspection call with its token.
    fn granted(
        self: Arc<Self>,
        result: CalloutResult,
        grant_key: Digest,
        token: String,
        authority: &str,
        key: Key,
        ctx: &mut Ctx<'_>,
    ) -> AuthnStep {
        match grant::judge(result) {
            Ok(Grant {
                access_token,
                usable_ms,
            }) => {
                let until = ctx.now_ms + usable_ms;
                ctx.caches
                    .grants
                    .insert(grant_key, access_token.clone(), until);
                self.check(&token, authority, Some(access_token), key)
            }
            Err(e) => settle(ctx, &key, Outcome::Rejected(e), None),
        }
    }

    /// The endpoint's answer, judged, cached and handed to the requests parked behind it.
    fn introspected(&self, key: Key, result: CalloutResult, ctx: &mut Ctx<'_>) -> AuthnStep {
        let (outcome, until) = match self.judge(result, ctx.now_ms) {
            Ok((subject, extra, exp_ms)) => {
                let until = self.cache_ttl_ms.map(|ttl| {
                    let ttl_until = ctx.now_ms + ttl.unwrap_or(DEFAULT_TTL_MS);
                    match (ttl, exp_ms) {
                        (None, Some(exp)) => exp,
                        (_, Some(exp)) => exp.min(ttl_until),
                        (_, None) => ttl_until,
                    }
                });
                (
                    Outcome::Session {
                        subject,
                        extra: Arc::new(extra),
                    },
                    until,
                )
            }
            Err(e) => (Outcome::Rejected(e), None),
        };
        settle(ctx, &key, outcome, until)
    }

    /// The subject, extra and expiry (ms) in the endpoint's answer, or why not.
    fn judge(
        &self,
        result: CalloutResult,
        now_ms: u64,
    ) -> Result<(String, Value, Option<u64>), PipelineError> {
        let (status, headers, body) = result.reached("the introspection endpoint")?;
        match status {
            200 => {}
            429 => return Err(PipelineError::rate_limited(headers)),
            other => return Err(IntrospectionError::Answered(other).into()),
        }
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&body) else {
            return Err(IntrospectionError::NotAnObject.into());
        };
        let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default();
        let token_use = text("token_use");
        if !token_use.is_empty() && token_use != "access_token" {
            return Err(IntrospectionError::TokenUse(token_use.to_string()).into());
        }
        if doc.get("active").and_then(Value::as_bool) != Some(true) {
            return Err(IntrospectionError::Inactive.into());
        }
        let exp = doc.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let exp_ms = u64::try_from(exp)
            .ok()
            .filter(|e| *e > 0)
            .map(|e| e.saturating_mul(1000));
        if exp_ms.is_some_and(|e| e < now_ms) {
            return Err(IntrospectionError::Expired.into());
        }
        let aud: Vec<&str> = match doc.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for wanted in &self.target_audience {
            if !aud.contains(&wanted.as_str()) {
                return Err(IntrospectionError::Audience(wanted.clone()).into());
            }
        }
        let iss = text("iss");
        if !self.trusted_issuers.is_empty() && !self.trusted_issuers.iter().any(|t| t == iss) {
            return Err(IntrospectionError::Issuer.into());
        }
        let scope = text("scope");
        if self.strategy != Strategy::None {
            let granted: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
            for needle in &self.required_scope {
                if !self.strategy.grants(&granted, needle) {
                    return Err(IntrospectionError::Scope(needle.clone()).into());
                }
            }
        }
        let mut extra = match doc.get("ext") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        extra.insert("username".into(), Value::from(text("username")));
        extra.insert("client_id".into(), Value::from(text("client_id")));
        extra.insert("scope".into(), Value::from(scope));
        if !aud.is_empty() {
            extra.insert(
                "aud".into(),
                Value::Array(aud.iter().map(|a| Value::from(*a)).collect()),
            );
        }
        Ok((text("sub").to_string(), Value::Object(extra), exp_ms))
    }
}

impl Authenticate for Introspection {
    fn start(self: Arc<Self>, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        let Some(token) = self.token(input) else {
            return AuthnStep::NotResponsible;
        };
        let key = self.key(&token, input);
        let cached = self.cache_ttl_ms.is_some();
        through_cache(ctx, &key, cached, self.target.timeout_ms, |ctx| {
            self.next_call(token, &input.request.authority, key, ctx)
        })
    }

    fn session_cache_entries(&self) -> usize {
        session_store::DEFAULT_MAX_ENTRIES
    }
}
