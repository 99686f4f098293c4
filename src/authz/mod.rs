//! Authorizers: whether the authenticated subject may proceed. `allow` and `deny` decide at
//! once; `remote` and `remote_json` ask a policy service (Ory Keto) with a callout.

pub mod remote;

use crate::config::clusters::Clusters;
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use remote::Remote;

#[derive(Debug, Clone)]
pub enum Authorizer {
    Allow,
    Deny,
    Remote(Box<Remote>),
}

/// What an authorizer decided, or the call it needs first.
pub enum AuthzStep {
    /// Allowed; these headers go upstream (a remote authorizer's forwarded answer headers).
    Allow(Vec<(String, String)>),
    Deny(PipelineError),
    Call(Callout),
}

impl Authorizer {
    pub const NAMES: &'static [&'static str] = &[
        "allow",
        "deny",
        "remote",
        "remote_json",
        "keto_engine_acp_ory",
    ];

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
    ) -> Result<Authorizer, String> {
        match name {
            "allow" => Ok(Authorizer::Allow),
            "deny" => Ok(Authorizer::Deny),
            "remote" => Ok(Authorizer::Remote(Box::new(Remote::build(
                "remote", config, clusters,
            )?))),
            "remote_json" => Ok(Authorizer::Remote(Box::new(Remote::build(
                "remote_json",
                config,
                clusters,
            )?))),
            "keto_engine_acp_ory" => Err(
                "keto_engine_acp_ory is deprecated upstream (Keto no longer has the ACP engine); \
                 use remote_json with Keto's POST /relation-tuples/check instead"
                    .to_string(),
            ),
            other => Err(format!("unknown authorizer {other:?}")),
        }
    }

    /// Whether deciding needs the whole request body (`remote`).
    pub fn needs_body(&self) -> bool {
        matches!(self, Authorizer::Remote(r) if r.needs_body())
    }

    /// `body` is the request body when `needs_body`, else empty.
    pub fn start(&self, session: &Session<'_>, body: &[u8]) -> AuthzStep {
        match self {
            Authorizer::Allow => AuthzStep::Allow(Vec::new()),
            Authorizer::Deny => AuthzStep::Deny(PipelineError::Forbidden(None)),
            Authorizer::Remote(r) => match r.callout(session, body) {
                Ok(c) => AuthzStep::Call(c),
                Err(e) => AuthzStep::Deny(e),
            },
        }
    }

    /// The verdict in the answer to the call `start` asked for.
    pub fn resume(&self, result: CalloutResult) -> Result<Vec<(String, String)>, PipelineError> {
        match self {
            Authorizer::Remote(r) => r.verdict(result),
            _ => Err(PipelineError::Internal(
                "authorizer received an unexpected callout response".into(),
            )),
        }
    }

    /// Headers this authorizer may set upstream (for anti-spoofing).
    pub fn header_names(&self) -> &[String] {
        match self {
            Authorizer::Remote(r) => &r.forward,
            _ => &[],
        }
    }
}
