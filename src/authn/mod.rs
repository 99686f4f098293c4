//! Authenticators: who is calling. Each answers "not responsible" (the chain moves on), a
//! subject, a rejection (the chain stops), a callout it needs first, or that it waits for
//! another request's identical callout.

pub mod anonymous;
pub mod cookies;
pub mod gjson;
pub mod jwt;
pub mod session_store;
pub mod token;

use crate::cache::session::Key;
use crate::cache::SharedData;
use crate::config::clusters::Clusters;
use crate::config::merge::or_empty;
use crate::errors::PipelineError;
use crate::pipeline::callout::{Callout, CalloutResult};
use crate::pipeline::request::Request;
use crate::pipeline::session::Query;
use crate::pipeline::VmState;
use session_store::{Credential, SessionStore};
use std::rc::Rc;

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
    pub vm: &'a mut VmState,
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
    /// Make this call; its answer goes to `resume` with the key.
    Call(Callout, Key),
    /// Another request is making the same call; start again when woken.
    Wait,
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
    ];

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
        jwks: &mut jwt::JwksRegistry,
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
        }
    }

    /// Continues after the callout `start` asked for.
    pub fn resume(&self, key: &Key, result: CalloutResult, ctx: &mut Ctx<'_>) -> AuthnStep {
        match self {
            Authenticator::SessionStore(s) => s.resume(key, result, ctx),
            _ => AuthnStep::Rejected(PipelineError::Internal(
                "authenticator received an unexpected callout response".to_string(),
            )),
        }
    }

    /// The largest session cache any of its handlers asks for.
    pub fn session_cache_entries(&self) -> usize {
        match self {
            Authenticator::SessionStore(s) => s.max_entries,
            _ => 0,
        }
    }
}
