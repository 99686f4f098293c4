//! Authenticators: who is calling. Each answers "not responsible" (the chain moves on), a
//! subject, a rejection (the chain stops), a call to make with its own continuation (`Then`),
//! or that it waits for another request's identical call.
//!
//! # Adding an authenticator
//! 1. A file here with the handler: a type implementing [`Authenticate`] and a `build` function
//!    from its merged JSON config (a `Build`). The trait has no provided methods, so the
//!    compiler asks for every piece; a handler that calls out returns `AuthnStep::Call` with a
//!    [`Then`] that carries whatever it needs to judge the answer.
//! 2. One line in [`REGISTRY`]: its Oathkeeper name and its `build`.
//! 3. Scenario-table cases (`tests/scenarios/`), a README configuration-reference entry.
//!
//! Nothing else names a handler: configuration, stats, the CLI and the pipeline go through the
//! registry and the trait.

pub mod anonymous;
mod caches;
pub mod client_credentials;
pub mod gjson;
pub mod grant;
pub mod introspection;
pub mod jwt;
pub mod noop;
pub mod session_store;
mod step;
pub mod token;
pub mod unauthorized;

use crate::cache::jwks::{JwksRegistry, JwksStore};
use crate::cache::place::Place;
use crate::cache::session::{Key, Lookup, Outcome};
use crate::cache::SharedData;
use crate::config::clusters::Clusters;
use crate::config::merge::or_empty;
use crate::config::{registry, Invalid};
use crate::vocab::request::Request;
use crate::vocab::stats::Stats;
pub use caches::Caches;
use std::fmt::Debug;
use std::sync::Arc;
pub use step::{AuthnStep, Then};

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
    /// Taken for each lookup, never across a signature check.
    pub jwks: &'a mut Place<JwksStore>,
    pub stats: &'a mut Stats,
    pub shared: &'a dyn SharedData,
    /// Parked requests the authenticator's answer lets go.
    pub wake: &'a mut Vec<u32>,
}

/// One authenticator of a rule, built from its configuration.
pub trait Authenticate: Debug + Send + Sync {
    /// Decides for this request, or asks for a call (`AuthnStep::Call`) whose answer goes to
    /// the continuation it returns. `self` is shared: a continuation keeps the handler.
    fn start(self: Arc<Self>, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep;
    /// Entries of the VM's session cache it asks for; 0 when it caches no sessions.
    fn session_cache_entries(&self) -> usize;
}

/// Builds one handler from its merged config (`null` when it has none).
pub type Build =
    fn(serde_json::Value, &Clusters, &mut JwksRegistry) -> Result<Arc<dyn Authenticate>, Invalid>;

/// Every authenticator this build knows, by its Oathkeeper name.
pub const REGISTRY: &[(&str, Build)] = &[
    ("anonymous", anonymous::build),
    ("noop", noop::build),
    ("unauthorized", unauthorized::build),
    ("cookie_session", session_store::build_cookie),
    ("bearer_token", session_store::build_bearer),
    ("jwt", jwt::build),
    ("oauth2_client_credentials", client_credentials::build),
    ("oauth2_introspection", introspection::build),
];

/// A configured authenticator: its name (for stats and explanations) and the handler.
#[derive(Debug, Clone)]
pub struct Authenticator {
    name: &'static str,
    handler: Arc<dyn Authenticate>,
}

impl Authenticator {
    /// The handler names this build knows, for config errors.
    pub fn names() -> impl Iterator<Item = &'static str> {
        registry::names(REGISTRY)
    }

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
        jwks: &mut JwksRegistry,
    ) -> Result<Authenticator, Invalid> {
        let (name, build) = registry::entry(REGISTRY, name)?;
        Ok(Authenticator {
            name,
            handler: build(or_empty(config), clusters, jwks)?,
        })
    }

    /// The handler name, for stats.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn start(&self, input: &Input<'_>, ctx: &mut Ctx<'_>) -> AuthnStep {
        Arc::clone(&self.handler).start(input, ctx)
    }

    /// The largest session cache any of its handlers asks for.
    pub fn session_cache_entries(&self) -> usize {
        self.handler.session_cache_entries()
    }
}

/// Reads a handler's config into its raw form; the error is serde's, naming the field.
pub fn parse<T: serde::de::DeserializeOwned>(config: serde_json::Value) -> Result<T, Invalid> {
    serde_json::from_value(config).map_err(Invalid::shape)
}

/// Answers from the session cache when `cached` and it holds the key, parks the request behind
/// an identical call in flight (in this VM or another; `timeout_ms`, the call's timeout, bounds
/// a wait on another VM's call), or lets this request lead: `lead` says what to call.
fn through_cache(
    ctx: &mut Ctx<'_>,
    key: &Key,
    cached: bool,
    timeout_ms: u64,
    lead: impl FnOnce(&mut Ctx<'_>) -> AuthnStep,
) -> AuthnStep {
    if !cached {
        return lead(ctx);
    }
    let found = ctx
        .caches
        .sessions
        .get()
        .lookup(key, ctx.waiter, ctx.now_ms, timeout_ms, ctx.shared);
    match found {
        Lookup::Hit(outcome) => outcome_step(outcome),
        Lookup::Wait => AuthnStep::Wait,
        Lookup::Lead => lead(ctx),
    }
}

/// Ends a led call: the outcome is cached until `until` (when given) and handed to the requests
/// parked behind it.
fn settle(ctx: &mut Ctx<'_>, key: &Key, outcome: Outcome, until: Option<u64>) -> AuthnStep {
    let woken =
        ctx.caches
            .sessions
            .get()
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
