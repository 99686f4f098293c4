//! Authenticators: who is calling. Each answers "not responsible" (the chain moves on), a
//! subject, a rejection (the chain stops), a callout it needs first, or that it waits for
//! another request's identical callout.

pub mod anonymous;
mod caches;
pub mod client_credentials;
pub mod gjson;
pub mod grant;
pub mod introspection;
pub mod jwt;
pub mod session_store;
pub mod token;

use crate::cache::jwks::{JwksRegistry, JwksStore};
use crate::cache::session::{Key, Lookup, Outcome};
use crate::cache::SharedData;
use crate::config::clusters::Clusters;
use crate::config::merge::or_empty;
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::Request;
use crate::vocab::session::Query;
use crate::vocab::stats::{Outcome as Counted, Stats};
pub use caches::Caches;
use session_store::{Credential, SessionStore};
use std::rc::Rc;

/// A call an authenticator waits for: the single-flight key it leads, and which of its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub key: Key,
    pub stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The call that checks the caller's credentials.
    Check,
    /// A client-credentials grant for portcullis itself, before the check.
    Grant,
}

impl Pending {
    pub fn check(key: Key) -> Pending {
        Pending {
            key,
            stage: Stage::Check,
        }
    }
}

/// The request as authenticators see it.
pub struct Input<'a> {
    pub request: &'a Request,
    /// The normalised path, encoded as it is forwarded.
    pub path: &'a str,
    /// The raw query.
    pub query: &'a str,
}

/// The per-VM state and time an authenticator may use.
pub struct Ctx<'a> {
    pub now_ms: u64,
    /// When this request arrived: waits for keys are bounded from here.
    pub started_ms: u64,
    /// This request's id, for parking it behind another request's callout.
    pub waiter: u32,
    pub caches: &'a mut Caches,
    pub jwks: &'a mut JwksStore,
    pub stats: &'a mut Stats,
    pub shared: &'a dyn SharedData,
    /// Parked requests the authenticator's answer lets go.
    pub wake: &'a mut Vec<u32>,
}

#[derive(Debug, Clone)]
pub enum Authenticator {
    Anonymous(anonymous::Anonymous),
    Noop,
    Unauthorized,
    /// `cookie_session` and `bearer_token`.
    SessionStore(Box<SessionStore>),
    Jwt(Box<jwt::Jwt>),
    ClientCredentials(Box<client_credentials::ClientCredentials>),
    Introspection(Box<introspection::Introspection>),
}

/// What an authenticator decided, or what it needs to decide.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthnStep {
    NotResponsible,
    Authenticated {
        subject: String,
        extra: Rc<serde_json::Value>,
    },
    Rejected(PipelineError),
    /// Make this call; its answer goes to `resume` with the pending marker.
    Call(Callout, Pending),
    /// Another request is making the same call; start again when woken.
    Wait,
}

impl AuthnStep {
    /// The outcome a step settles, for stats; `None` while it still waits for a callout.
    pub fn outcome(&self) -> Option<Counted> {
        Some(match self {
            AuthnStep::Authenticated { .. } => Counted::Responsible,
            AuthnStep::NotResponsible => Counted::NotResponsible,
            AuthnStep::Rejected(
                PipelineError::Unauthorized(_)
                | PipelineError::Forbidden(_)
                | PipelineError::TooManyRequests(_),
            ) => Counted::Rejected,
            AuthnStep::Rejected(_) => Counted::Error,
            AuthnStep::Call(..) | AuthnStep::Wait => return None,
        })
    }
}

impl Authenticator {
    /// The handler names this build knows, for config errors.
    pub const NAMES: &'static [&'static str] = &[
        "anonymous",
        "noop",
        "unauthorized",
        "cookie_session",
        "bearer_token",
        "jwt",
        "oauth2_client_credentials",
        "oauth2_introspection",
    ];

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
        jwks: &mut JwksRegistry,
    ) -> Result<Authenticator, String> {
        let de = |e: serde_json::Error| e.to_string();
        Ok(match name {
            "anonymous" => {
                Authenticator::Anonymous(serde_json::from_value(or_empty(config)).map_err(de)?)
            }
            "noop" => Authenticator::Noop,
            "unauthorized" => Authenticator::Unauthorized,
            "cookie_session" | "bearer_token" => {
                let credential = if name == "cookie_session" {
                    Credential::Cookie
                } else {
                    Credential::Bearer
                };
                let raw = serde_json::from_value(or_empty(config)).map_err(de)?;
                Authenticator::SessionStore(Box::new(SessionStore::build(
                    credential, raw, clusters,
                )?))
            }
            "jwt" => {
                let raw = serde_json::from_value(or_empty(config)).map_err(de)?;
                Authenticator::Jwt(Box::new(jwt::Jwt::build(raw, clusters, jwks)?))
            }
            "oauth2_client_credentials" => {
                let raw = serde_json::from_value(or_empty(config)).map_err(de)?;
                Authenticator::ClientCredentials(Box::new(
                    client_credentials::ClientCredentials::build(raw, clusters)?,
                ))
            }
            "oauth2_introspection" => {
                let raw = serde_json::from_value(or_empty(config)).map_err(de)?;
                Authenticator::Introspection(Box::new(introspection::Introspection::build(
                    raw, clusters,
                )?))
            }
            other => return Err(format!("unknown authenticator {other:?}")),
        })
    }

    /// The handler name, for stats.
    pub fn name(&self) -> &'static str {
        match self {
            Authenticator::Anonymous(_) => "anonymous",
            Authenticator::Noop => "noop",
            Authenticator::Unauthorized => "unauthorized",
            Authenticator::SessionStore(s) => match s.credential {
                Credential::Cookie => "cookie_session",
                Credential::Bearer => "bearer_token",
            },
            Authenticator::Jwt(_) => "jwt",
            Authenticator::ClientCredentials(_) => "oauth2_client_credentials",
            Authenticator::Introspection(_) => "oauth2_introspection",
        }
    }

    pub fn start(&self, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        let headers = &input.request.headers;
        match self {
            Authenticator::Anonymous(a) => {
                if headers.get("authorization").is_some_and(|v| !v.is_empty()) {
                    AuthnStep::NotResponsible
                } else {
                    AuthnStep::Authenticated {
                        subject: a.subject.clone(),
                        extra: Rc::new(serde_json::Value::Null),
                    }
                }
            }
            Authenticator::Noop => AuthnStep::Authenticated {
                subject: String::new(),
                extra: Rc::new(serde_json::Value::Null),
            },
            Authenticator::Unauthorized => AuthnStep::Rejected(PipelineError::Unauthorized(None)),
            Authenticator::SessionStore(s) => {
                let responsible = match s.credential {
                    Credential::Cookie => s.has_cookie(input),
                    Credential::Bearer => {
                        token::extract(s.token_from.as_ref(), headers, Query(input.query))
                            .is_some_and(|t| t.starts_with(&s.prefix))
                    }
                };
                if responsible {
                    s.start(input, ctx)
                } else {
                    AuthnStep::NotResponsible
                }
            }
            Authenticator::Jwt(j) => j.start(input, ctx),
            Authenticator::ClientCredentials(c) => c.start(input, ctx),
            Authenticator::Introspection(i) => i.start(input, ctx),
        }
    }

    /// Continues after a callout `start` (or an earlier `resume`) asked for.
    pub fn resume(
        &self,
        input: &Input<'_>,
        pending: Pending,
        result: CalloutResult,
        ctx: &mut Ctx<'_>,
    ) -> AuthnStep {
        match self {
            Authenticator::SessionStore(s) => s.resume(&pending.key, result, ctx),
            Authenticator::ClientCredentials(c) => c.resume(input, &pending.key, result, ctx),
            Authenticator::Introspection(i) => i.resume(input, pending, result, ctx),
            _ => AuthnStep::Rejected(PipelineError::Internal(
                "authenticator received an unexpected callout response".to_string(),
            )),
        }
    }

    /// The largest session cache any of its handlers asks for.
    pub fn session_cache_entries(&self) -> usize {
        match self {
            Authenticator::SessionStore(s) => s.max_entries,
            Authenticator::ClientCredentials(_) | Authenticator::Introspection(_) => {
                session_store::DEFAULT_MAX_ENTRIES
            }
            _ => 0,
        }
    }
}

/// Answers from the session cache when `cached` and it holds the key, parks the request behind
/// an identical call in flight, or lets this request lead: `lead` says what to call.
fn through_cache(
    ctx: &mut Ctx<'_>,
    key: &Key,
    cached: bool,
    lead: impl FnOnce(&mut Ctx<'_>) -> AuthnStep,
) -> AuthnStep {
    if !cached {
        return lead(ctx);
    }
    match ctx
        .caches
        .sessions
        .lookup(key, ctx.waiter, ctx.now_ms, ctx.shared)
    {
        Lookup::Hit(outcome) => outcome_step(outcome),
        Lookup::Wait => AuthnStep::Wait,
        Lookup::Lead => lead(ctx),
    }
}

/// Ends a led call: the outcome is cached until `until` (when given) and handed to the requests
/// parked behind it.
fn settle(ctx: &mut Ctx<'_>, key: &Key, outcome: Outcome, until: Option<u64>) -> AuthnStep {
    let woken = ctx
        .caches
        .sessions
        .complete(key, outcome.clone(), until, ctx.now_ms, ctx.shared);
    ctx.wake.extend(woken);
    outcome_step(outcome)
}

fn outcome_step(outcome: Outcome) -> AuthnStep {
    match outcome {
        Outcome::Session { subject, extra } => AuthnStep::Authenticated { subject, extra },
        Outcome::Rejected(e) => AuthnStep::Rejected(e),
    }
}
