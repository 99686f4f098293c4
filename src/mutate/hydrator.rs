//! `hydrator`: sends the authentication session, as JSON, to an API that may enrich it, and
//! continues with the session it answers (same subject required). Answers can be cached.

use super::{Ctx, Mutate, MutateStep, Then};
use crate::cache::digest::{digest, Digest};
use crate::cache::jwks::JwksRegistry;
use crate::cache::weigh::{json_bytes, Weigh};
use crate::config::cache_section::CacheSection;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::vocab::callout::{Callout, CalloutResult, Target};
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::Headers;
use crate::vocab::session::Session;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    api: Api,
    #[serde(default)]
    cache: CacheSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Api {
    url: String,
    #[serde(default)]
    auth: Option<Auth>,
    /// Accepted: Envoy's cluster owns retries and timeouts here.
    #[serde(default, rename = "retry")]
    _retry: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    basic: Basic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Basic {
    username: String,
    password: String,
}

/// Why the API's answer cannot be used (Oathkeeper's texts).
#[derive(Debug)]
pub enum HydratorError {
    InvalidJson,
    /// Any status but 200.
    Answered(u32),
}

impl std::fmt::Display for HydratorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HydratorError::InvalidJson => {
                f.write_str("The call to an external API returned an invalid JSON object")
            }
            HydratorError::Answered(401) => {
                f.write_str("Invalid credentials were provided in mutator hydrator")
            }
            HydratorError::Answered(status @ 502..=504) => {
                write!(f, "the hydrator API answered {status}")
            }
            HydratorError::Answered(status) => write!(
                f,
                "The call to an external API returned a non-200 HTTP response: {status}"
            ),
        }
    }
}

impl std::error::Error for HydratorError {}

impl From<HydratorError> for PipelineError {
    fn from(e: HydratorError) -> PipelineError {
        match e {
            // Envoy answers 503 itself when it cannot reach the API: an outage, as a failed
            // call is, whichever of the two it was.
            HydratorError::Answered(502..=504) => PipelineError::unavailable(e),
            _ => PipelineError::internal(e),
        }
    }
}

/// What the API answered: the parts of the session it may replace.
#[derive(Debug, Clone, PartialEq)]
pub struct Hydrated {
    pub extra: Arc<Value>,
    pub header: Vec<(String, String)>,
}

impl Weigh for Hydrated {
    fn bytes(&self) -> usize {
        let headers: usize = self
            .header
            .iter()
            .map(|(k, v)| 48 + k.len() + v.len())
            .sum();
        64 + headers + json_bytes(&self.extra)
    }
}

#[derive(Debug, Clone)]
pub struct Hydrator {
    target: Target,
    url: String,
    authorization: Option<String>,
    /// How long answers are cached; `None` when caching is off.
    cache_ms: Option<u64>,
}

/// Oathkeeper's default hydrator cache ttl.
const DEFAULT_CACHE_MS: u64 = 60_000;

pub fn build(
    config: Value,
    clusters: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Mutate>, Invalid> {
    Ok(Arc::new(Hydrator::build(config, clusters)?))
}

impl Mutate for Hydrator {
    fn start(self: Arc<Self>, session: &mut Session<'_>, ctx: &mut Ctx<'_>) -> MutateStep {
        let (callout, key) = self.callout(session);
        let key = digest(&key);
        if self.cache_ms.is_some() {
            if let Some(hit) = ctx.caches.hydrations.get(&key, ctx.now_ms) {
                hit.clone().apply(session);
                return MutateStep::Done;
            }
        }
        let then = Then::new(move |result, session, ctx| self.hydrated(key, result, session, ctx));
        MutateStep::Call(callout, then)
    }

    fn header_names(&self) -> Vec<&str> {
        Vec::new()
    }

    fn signs(&self) -> bool {
        false
    }

    fn public_key(&self, _: &mut Ctx<'_>) -> Option<Value> {
        None
    }
}

impl Hydrated {
    /// The session continues with what the API answered.
    fn apply(self, session: &mut Session<'_>) {
        session.extra = self.extra;
        session.header = Headers::new(self.header);
    }
}

impl Hydrator {
    /// The API's answer: cached under `key` (when caching is on), then applied.
    fn hydrated(
        &self,
        key: Digest,
        result: CalloutResult,
        session: &mut Session<'_>,
        ctx: &mut Ctx<'_>,
    ) -> MutateStep {
        let hydrated = match Self::answer(result, &session.subject) {
            Ok(h) => h,
            Err(e) => return MutateStep::Failed(e),
        };
        if let Some(ttl) = self.cache_ms {
            let until = ctx.now_ms + ttl;
            ctx.caches.hydrations.insert(key, hydrated.clone(), until);
        }
        hydrated.apply(session);
        MutateStep::Done
    }

    pub fn build(config: Value, clusters: &Clusters) -> Result<Hydrator, Invalid> {
        let raw: RawConfig = serde_json::from_value(config).map_err(Invalid::shape)?;
        let target = clusters
            .resolve(&raw.api.url)
            .map_err(|e| e.at("api.url"))?;
        let cache_ms = raw
            .cache
            .lifetime()?
            .map(|ttl| ttl.unwrap_or(DEFAULT_CACHE_MS));
        let authorization = raw.api.auth.map(|a| {
            let pair = format!("{}:{}", a.basic.username, a.basic.password);
            format!("Basic {}", STANDARD.encode(pair))
        });
        Ok(Hydrator {
            target,
            url: raw.api.url,
            authorization,
            cache_ms,
        })
    }

    /// The session as Oathkeeper serialises it (Go's field names and `http.Header` maps).
    fn body(session: &Session<'_>) -> Vec<u8> {
        fn headers<'a>(
            pairs: impl Iterator<Item = (&'a str, &'a str)>,
        ) -> BTreeMap<String, Vec<&'a str>> {
            let mut map: BTreeMap<String, Vec<&str>> = BTreeMap::new();
            for (k, v) in pairs {
                if !k.starts_with(':') {
                    map.entry(canonical(k)).or_default().push(v);
                }
            }
            map
        }
        let url = &session.match_context.url;
        json!({
            "subject": session.subject,
            "extra": *session.extra,
            "header": headers(session.header.iter()),
            "match_context": {
                "regexp_capture_groups": session.match_context.captures,
                "url": {"Scheme": url.scheme, "Opaque": "", "User": null, "Host": url.host,
                        "Path": url.path, "RawPath": "", "ForceQuery": false,
                        "RawQuery": url.query.0, "Fragment": "", "RawFragment": ""},
                "method": session.match_context.method,
                "header": headers(session.match_context.header.iter()),
            },
        })
        .to_string()
        .into_bytes()
    }

    /// The call to make, and the cache key of its answer (the body, the credentials, the URL).
    fn callout(&self, session: &Session<'_>) -> (Callout, Vec<u8>) {
        let body = Self::body(session);
        let mut path = self.target.path.clone();
        let query = session.match_context.url.query.0;
        let own = &self.target.query;
        if !own.is_empty() || !query.is_empty() {
            path.push('?');
            path.push_str(own);
            if !own.is_empty() && !query.is_empty() {
                path.push('&');
            }
            path.push_str(query);
        }
        let mut call = Callout::to(&self.target, "POST", path);
        for (k, v) in session.match_context.header.iter() {
            if !k.starts_with(':')
                && !matches!(
                    k,
                    "host" | "content-length" | "content-type" | "transfer-encoding" | "connection"
                )
            {
                call.headers.push((k.to_string(), v.to_string()));
            }
        }
        if let Some(a) = &self.authorization {
            call.set_header("authorization", a.clone());
        }
        call.set_header("content-type", "application/json".to_string());
        // The API's credentials too: two hydrators on one URL may be told different things.
        let mut key = body.clone();
        key.push(b'|');
        key.extend_from_slice(self.authorization.as_deref().unwrap_or("").as_bytes());
        key.push(b'|');
        key.extend_from_slice(self.url.as_bytes());
        call.body = Some(body);
        (call, key)
    }

    /// What the API answered for `subject`.
    fn answer(result: CalloutResult, subject: &str) -> Result<Hydrated, PipelineError> {
        let invalid = || PipelineError::from(HydratorError::InvalidJson);
        let body = match result.reached("the hydrator API")? {
            (200, _, body) => body,
            (status, ..) => return Err(HydratorError::Answered(status).into()),
        };
        let v: Map<String, Value> = serde_json::from_slice(&body).map_err(|_| invalid())?;
        // Go decodes into a struct: a missing or null `subject` is "", anything but a string
        // fails to decode.
        let answered = match v.get("subject") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(invalid()),
        };
        if answered != subject {
            return Err(invalid());
        }
        let extra = match v.get("extra") {
            Some(e @ Value::Object(_)) => e.clone(),
            _ => Value::Object(Map::new()),
        };
        let mut header = Vec::new();
        if let Some(Value::Object(h)) = v.get("header") {
            for (k, vals) in h {
                let first = match vals {
                    Value::Array(a) => a.first().and_then(Value::as_str),
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                };
                if let Some(first) = first {
                    header.push((k.to_ascii_lowercase(), first.to_string()));
                }
            }
        }
        Ok(Hydrated {
            extra: Arc::new(extra),
            header,
        })
    }
}

/// Go's `http.CanonicalHeaderKey`: `x-user-id` → `X-User-Id`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}
