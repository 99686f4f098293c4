//! What `cookie_session` and `bearer_token` share: asking a session store (Kratos
//! `/sessions/whoami`) about the request's credentials, reading subject and extra from its
//! answer, and caching that answer.

use super::gjson;
use super::token::TokenFrom;
use super::{parse, settle, through_cache, Authenticate, AuthnStep, Ctx, Input, Then};
use crate::cache::digest::{digest, Hasher};
use crate::cache::jwks::JwksRegistry;
use crate::cache::session::{Key, Outcome};
use crate::config::cache_section::CacheSection;
use crate::config::clusters::Clusters;
use crate::config::{Invalid, Kind};
use crate::vocab::callout::{Callout, CalloutResult, Target};
use crate::vocab::effect::{valid_header_name, valid_header_value};
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Query;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub check_session_url: String,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub preserve_path: bool,
    #[serde(default = "yes")]
    pub preserve_query: bool,
    #[serde(default)]
    pub preserve_host: bool,
    #[serde(default)]
    pub force_method: String,
    #[serde(default)]
    pub forward_http_headers: Vec<String>,
    #[serde(default)]
    pub additional_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub subject_from: Option<String>,
    #[serde(default)]
    pub extra_from: Option<String>,
    #[serde(default)]
    pub token_from: Option<TokenFrom>,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub cache: CacheSection,
}

fn yes() -> bool {
    true
}

pub const DEFAULT_TTL_MS: u64 = 30_000;
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Why the session store's answer authenticates nobody.
#[derive(Debug)]
pub enum SessionStoreError {
    /// Any status but 200 and 429.
    Answered(u32),
    NotJson,
    SubjectNotAString(String),
    ExtraNotAnObject(String),
}

impl std::fmt::Display for SessionStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionStoreError::Answered(status) => write!(f, "the session store answered {status}"),
            SessionStoreError::NotJson => {
                f.write_str("the session store answered 200 with a body that is not JSON")
            }
            SessionStoreError::SubjectNotAString(got) => write!(
                f,
                "The configured subject_from GJSON path returned an error on JSON output: expected a string, got {got}"
            ),
            SessionStoreError::ExtraNotAnObject(got) => write!(
                f,
                "The configured extra_from GJSON path returned an error on JSON output: expected an object, got {got}"
            ),
        }
    }
}

impl std::error::Error for SessionStoreError {}

impl From<SessionStoreError> for PipelineError {
    fn from(e: SessionStoreError) -> PipelineError {
        match e {
            // Envoy reports an unreachable or reset cluster as its own 503: an outage either
            // way, not a verdict on the caller's credentials.
            SessionStoreError::Answered(500..=599) | SessionStoreError::NotJson => {
                PipelineError::unavailable(e)
            }
            SessionStoreError::Answered(_) => PipelineError::unauthorized(e),
            SessionStoreError::SubjectNotAString(_) | SessionStoreError::ExtraNotAnObject(_) => {
                PipelineError::forbidden(e)
            }
        }
    }
}

/// Which credential the authenticator is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Cookie,
    Bearer,
}

pub fn build_cookie(
    config: serde_json::Value,
    clusters: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(SessionStore::build(
        Credential::Cookie,
        parse(config)?,
        clusters,
    )?))
}

pub fn build_bearer(
    config: serde_json::Value,
    clusters: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(SessionStore::build(
        Credential::Bearer,
        parse(config)?,
        clusters,
    )?))
}

#[derive(Debug, Clone)]
pub struct SessionStore {
    pub credential: Credential,
    target: Target,
    only: Vec<String>,
    preserve_path: bool,
    preserve_query: bool,
    preserve_host: bool,
    force_method: Option<String>,
    /// Lowercase names copied from the request.
    forward: Vec<String>,
    additional: Vec<(String, String)>,
    subject_from: gjson::Path,
    extra_from: gjson::Path,
    pub token_from: Option<TokenFrom>,
    pub prefix: String,
    /// Cache lifetimes; `None` disables that kind of caching.
    ttl_ms: Option<u64>,
    negative_ttl_ms: Option<u64>,
    pub max_entries: usize,
    /// Distinguishes configs in the cache key (paths, subject_from, …).
    config_tag: Key,
}

impl SessionStore {
    pub fn build(
        credential: Credential,
        raw: RawConfig,
        clusters: &Clusters,
    ) -> Result<SessionStore, Invalid> {
        let target = clusters
            .resolve(&raw.check_session_url)
            .map_err(|e| e.at("check_session_url"))?;
        match credential {
            Credential::Cookie if raw.token_from.is_some() || !raw.prefix.is_empty() => {
                return Err(Invalid::whole(Kind::Explained(
                    "token_from and prefix belong to bearer_token, not cookie_session",
                )))
            }
            Credential::Bearer if !raw.only.is_empty() => {
                return Err(Invalid::whole(Kind::Explained(
                    "only belongs to cookie_session, not bearer_token",
                )))
            }
            _ => {}
        }
        if let Some(t) = &raw.token_from {
            t.validate()?;
        }
        let (implied, subject_default) = match credential {
            Credential::Cookie => ("cookie", "subject"),
            Credential::Bearer => ("authorization", "sub"),
        };
        let mut forward: Vec<String> = raw
            .forward_http_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if !forward.iter().any(|h| h == implied) {
            forward.push(implied.to_string());
        }
        for (name, value) in &raw.additional_headers {
            if !valid_header_name(name) || !valid_header_value(value) {
                return Err(Invalid::new(
                    "additional_headers",
                    Kind::NotAHeader(name.clone()),
                ));
            }
        }
        let subject_from = raw.subject_from.as_deref().unwrap_or(subject_default);
        let extra_from = raw.extra_from.as_deref().unwrap_or("extra");
        // On unless disabled (beyond Oathkeeper, whose session checks are never cached).
        let enabled = raw.cache.enabled(true);
        let ttl_ms = Some(raw.cache.ttl_ms()?.unwrap_or(DEFAULT_TTL_MS)).filter(|_| enabled);
        let negative_ttl_ms = raw.cache.negative_ttl_ms()?.filter(|_| enabled);
        let tag = format!(
            "{:?}|{}|{}|{}|{}|{subject_from}|{extra_from}",
            credential,
            raw.check_session_url,
            raw.preserve_path,
            raw.preserve_query,
            raw.force_method
        );
        Ok(SessionStore {
            credential,
            target,
            only: raw.only,
            preserve_path: raw.preserve_path,
            preserve_query: raw.preserve_query,
            preserve_host: raw.preserve_host,
            force_method: (!raw.force_method.is_empty()).then_some(raw.force_method),
            forward,
            additional: raw
                .additional_headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            subject_from: gjson::Path::parse(subject_from).map_err(|e| e.at("subject_from"))?,
            extra_from: gjson::Path::parse(extra_from).map_err(|e| e.at("extra_from"))?,
            token_from: raw.token_from,
            prefix: raw.prefix,
            ttl_ms,
            negative_ttl_ms,
            max_entries: raw.cache.max_entries().unwrap_or(DEFAULT_MAX_ENTRIES),
            config_tag: digest(tag.as_bytes()),
        })
    }

    /// `cookie_session` responsibility: a listed cookie, or any cookie when none is listed.
    pub fn has_cookie(&self, input: &Input<'_>) -> bool {
        let mut cookies = crate::vocab::cookies::cookies(&input.request.headers);
        if self.only.is_empty() {
            cookies.next().is_some()
        } else {
            cookies.any(|(name, _)| self.only.iter().any(|o| o == name))
        }
    }

    /// The call's headers, pseudo-headers first, each passed to `emit` once in the order they
    /// are sent: the one description both the call and its cache key are made from, so that
    /// a cache hit builds no call.
    fn call_headers(&self, input: &Input<'_>, mut emit: impl FnMut(&str, &str)) {
        let method = self
            .force_method
            .as_deref()
            .unwrap_or(&input.request.method);
        let (path, query) = (
            if self.preserve_path {
                self.target.path.as_str()
            } else {
                input.path
            },
            if self.preserve_query {
                self.target.query.as_str()
            } else {
                input.query
            },
        );
        emit(":method", method);
        if query.is_empty() {
            emit(":path", path);
        } else {
            emit(":path", &format!("{path}?{query}"));
        }
        emit(":authority", &self.target.authority);
        emit(":scheme", &self.target.scheme);
        // Configured headers win over the request's; a header is sent once.
        let configured = |name: &str| {
            self.additional.iter().any(|(n, _)| n == name)
                || (self.preserve_host && name == "x-forwarded-host")
        };
        for (name, value) in input.request.headers.iter() {
            if self.forward.iter().any(|f| f == name) && !configured(name) {
                emit(name, value);
            }
        }
        for (name, value) in &self.additional {
            if !(self.preserve_host && name == "x-forwarded-host") {
                emit(name, value);
            }
        }
        if self.preserve_host {
            emit("x-forwarded-host", &input.request.authority);
        }
    }

    fn callout(&self, input: &Input<'_>) -> Callout {
        let mut headers = Vec::with_capacity(4 + self.forward.len() + self.additional.len());
        self.call_headers(input, |k, v| headers.push((k.to_string(), v.to_string())));
        Callout {
            cluster: self.target.cluster.clone(),
            headers,
            body: None,
            timeout_ms: self.target.timeout_ms,
        }
    }

    /// Everything that changes the store's answer: the config and the exact call.
    fn key(&self, input: &Input<'_>) -> Key {
        let mut h = Hasher::default();
        h.field(&self.config_tag);
        self.call_headers(input, |k, v| {
            h.field(k.as_bytes()).field(v.as_bytes());
        });
        h.finish()
    }

    /// Whether the request carries the credential this handler is about.
    fn responsible(&self, input: &Input<'_>) -> bool {
        match self.credential {
            Credential::Cookie => self.has_cookie(input),
            Credential::Bearer => super::token::extract(
                self.token_from.as_ref(),
                &input.request.headers,
                Query(input.query),
            )
            .is_some_and(|t| t.starts_with(&self.prefix)),
        }
    }

    fn resume(&self, key: &Key, result: CalloutResult, ctx: &mut Ctx<'_>) -> AuthnStep {
        let (outcome, cache_ms) = self.judge(result);
        let until =
            cache_ms.map(|(ttl, expires)| (ctx.now_ms + ttl).min(expires.unwrap_or(u64::MAX)));
        settle(ctx, key, outcome, until)
    }

    /// The outcome, and how long it may be cached: (ttl, the session's own expiry).
    /// A 200 is trusted as Oathkeeper trusts it; `expires_at` only bounds how long it is cached.
    fn judge(&self, result: CalloutResult) -> (Outcome, Option<(u64, Option<u64>)>) {
        let (status, headers, body) = match result.reached("the session store") {
            Ok(answer) => answer,
            Err(e) => return (Outcome::Rejected(e), None),
        };
        match status {
            200 => {}
            429 => {
                return (
                    Outcome::Rejected(PipelineError::rate_limited(headers)),
                    None,
                );
            }
            500..=599 => {
                return (
                    Outcome::Rejected(SessionStoreError::Answered(status).into()),
                    None,
                )
            }
            other => {
                return (
                    Outcome::Rejected(SessionStoreError::Answered(other).into()),
                    self.negative_ttl_ms.map(|t| (t, None)),
                );
            }
        }
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return (Outcome::Rejected(SessionStoreError::NotJson.into()), None);
        };
        let subject = match self.subject_from.get(&doc).as_deref() {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => {
                return (
                    Outcome::Rejected(
                        SessionStoreError::SubjectNotAString(other.to_string()).into(),
                    ),
                    None,
                )
            }
        };
        let extra = match self.extra_from.get(&doc).map(|v| v.into_owned()) {
            None | Some(serde_json::Value::Null) => serde_json::Value::Null,
            Some(v @ serde_json::Value::Object(_)) => v,
            Some(other) => {
                return (
                    Outcome::Rejected(
                        SessionStoreError::ExtraNotAnObject(other.to_string()).into(),
                    ),
                    None,
                )
            }
        };
        let expires = doc
            .get("expires_at")
            .and_then(|v| v.as_str())
            .and_then(crate::vocab::time::parse_rfc3339_ms);
        (
            Outcome::Session {
                subject,
                extra: Arc::new(extra),
            },
            self.ttl_ms.map(|t| (t, expires)),
        )
    }
}

impl Authenticate for SessionStore {
    fn start(self: Arc<Self>, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        if !self.responsible(input) {
            return AuthnStep::NotResponsible;
        }
        let key = self.key(input);
        let cached = self.ttl_ms.is_some() || self.negative_ttl_ms.is_some();
        through_cache(ctx, &key, cached, self.target.timeout_ms, |_| {
            let callout = self.callout(input);
            let then = Then::new(key, move |result, ctx| self.resume(&key, result, ctx));
            AuthnStep::Call(callout, then)
        })
    }

    fn session_cache_entries(&self) -> usize {
        self.max_entries
    }
}
