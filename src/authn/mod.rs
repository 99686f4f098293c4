//! Authenticators: who is calling. Each answers "not responsible" (the chain moves on), a
//! subject, a rejection (the chain stops), or a callout it needs first.

pub mod anonymous;

use crate::errors::PipelineError;
use crate::pipeline::callout::{Callout, CalloutResult};
use crate::pipeline::request::Request;

#[derive(Debug, Clone)]
pub enum Authenticator {
    Anonymous(anonymous::Anonymous),
    Noop,
    Unauthorized,
}

/// What an authenticator decided, or what it needs to decide.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthnStep {
    NotResponsible,
    Authenticated {
        subject: String,
        extra: serde_json::Value,
    },
    Rejected(PipelineError),
    Call(Callout),
}

impl Authenticator {
    /// The handler names this build knows, for config errors.
    pub const NAMES: &'static [&'static str] = &["anonymous", "noop", "unauthorized"];

    pub fn build(name: &str, config: serde_json::Value) -> Result<Authenticator, String> {
        Ok(match name {
            "anonymous" => Authenticator::Anonymous(
                serde_json::from_value(crate::config::merge::or_empty(config))
                    .map_err(|e| e.to_string())?,
            ),
            "noop" => Authenticator::Noop,
            "unauthorized" => Authenticator::Unauthorized,
            other => return Err(format!("unknown authenticator {other:?}")),
        })
    }

    pub fn start(&self, request: &Request) -> AuthnStep {
        match self {
            Authenticator::Anonymous(a) => {
                if request
                    .headers
                    .get("authorization")
                    .is_some_and(|v| !v.is_empty())
                {
                    AuthnStep::NotResponsible
                } else {
                    AuthnStep::Authenticated {
                        subject: a.subject.clone(),
                        extra: serde_json::Value::Null,
                    }
                }
            }
            Authenticator::Noop => AuthnStep::Authenticated {
                subject: String::new(),
                extra: serde_json::Value::Null,
            },
            Authenticator::Unauthorized => AuthnStep::Rejected(PipelineError::Unauthorized(None)),
        }
    }

    /// Continues after the callout `start` asked for.
    pub fn resume(&self, _request: &Request, _result: CalloutResult) -> AuthnStep {
        AuthnStep::Rejected(PipelineError::Internal(
            "authenticator received an unexpected callout response".to_string(),
        ))
    }
}
