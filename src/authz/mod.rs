//! Authorizers: whether the authenticated subject may proceed. `allow` and `deny` decide at
//! once; `remote` and `remote_json` ask a policy service (Ory Keto) with a callout.
//!
//! # Adding an authorizer
//! 1. A file here: a type implementing [`Authorize`] (no provided methods: the compiler asks
//!    for every piece) and a `build` function from its merged JSON config.
//! 2. One line in [`REGISTRY`].
//! 3. Scenario-table cases and a README configuration-reference entry.

pub mod allow;
pub mod deny;
pub mod remote;

use crate::config::clusters::Clusters;
use crate::config::merge::or_empty;
use crate::config::{registry, Invalid, Kind};
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use std::fmt::Debug;
use std::sync::Arc;

/// What an authorizer decided, or the call it needs first.
pub enum AuthzStep {
    /// Allowed; these headers go upstream (a remote authorizer's forwarded answer headers).
    Allow(Vec<(String, String)>),
    Deny(PipelineError),
    /// Make this call; its answer goes to the continuation.
    Call(Callout, Then),
}

/// An authorizer's continuation: its verdict on the call's answer.
pub struct Then(Box<dyn FnOnce(CalloutResult) -> AuthzStep>);

impl Then {
    pub fn new(verdict: impl FnOnce(CalloutResult) -> AuthzStep + 'static) -> Then {
        Then(Box::new(verdict))
    }

    pub fn resume(self, result: CalloutResult) -> AuthzStep {
        (self.0)(result)
    }
}

/// A rule's authorizer, built from its configuration.
pub trait Authorize: Debug + Send + Sync {
    /// Decides for this session, or asks for a call. `body` is the request body when
    /// `needs_body`, else empty.
    fn start(self: Arc<Self>, session: &Session<'_>, body: &[u8]) -> AuthzStep;
    /// Whether deciding needs the whole request body, which the proxy must hold back for it.
    fn needs_body(&self) -> bool;
    /// Headers it may set upstream, lowercase (anti-spoofing strips them elsewhere).
    fn header_names(&self) -> &[String];
}

/// Builds one authorizer from its merged config (`null` when it has none).
pub type Build = fn(serde_json::Value, &Clusters) -> Result<Arc<dyn Authorize>, Invalid>;

/// Every authorizer this build knows, by its Oathkeeper name.
pub const REGISTRY: &[(&str, Build)] = &[
    ("allow", allow::build),
    ("deny", deny::build),
    ("remote", remote::build_remote),
    ("remote_json", remote::build_remote_json),
    ("keto_engine_acp_ory", |_, _| {
        Err(Invalid::whole(Kind::Explained(
            "keto_engine_acp_ory is deprecated upstream (Keto no longer has the ACP engine); \
             use remote_json with Keto's POST /relation-tuples/check instead",
        )))
    }),
];

/// A configured authorizer: its name and the handler.
#[derive(Debug, Clone)]
pub struct Authorizer {
    name: &'static str,
    handler: Arc<dyn Authorize>,
}

impl Authorizer {
    /// The handler names this build knows, for config errors.
    pub fn names() -> impl Iterator<Item = &'static str> {
        registry::names(REGISTRY)
    }

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
    ) -> Result<Authorizer, Invalid> {
        let (name, build) = registry::entry(REGISTRY, name)?;
        Ok(Authorizer {
            name,
            handler: build(or_empty(config), clusters)?,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn needs_body(&self) -> bool {
        self.handler.needs_body()
    }

    pub fn start(&self, session: &Session<'_>, body: &[u8]) -> AuthzStep {
        Arc::clone(&self.handler).start(session, body)
    }

    pub fn header_names(&self) -> &[String] {
        self.handler.header_names()
    }
}
