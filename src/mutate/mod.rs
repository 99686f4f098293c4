//! Mutators: what the upstream learns about the caller. Each changes the session (its subject,
//! extra, headers) in turn; one may first make a call, with its own continuation (`Then`).
//!
//! # Adding a mutator
//! 1. A file here: a type implementing [`Mutate`] (no provided methods: the compiler asks for
//!    every piece) and a `build` function from its merged JSON config. What it remembers
//!    between requests goes in [`Caches`].
//! 2. One line in [`REGISTRY`].
//! 3. Scenario-table cases and a README configuration-reference entry.

mod caches;
pub mod cookie;
pub mod header;
pub mod hydrator;
pub mod id_token;
pub mod noop;

pub use caches::Caches;

use crate::cache::jwks::{JwksRegistry, JwksStore};
use crate::cache::place::Place;
use crate::config::clusters::Clusters;
use crate::config::merge::or_empty;
use crate::config::{registry, Invalid};
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use std::fmt::Debug;
use std::sync::Arc;

/// The per-VM state and time a mutator may use.
pub struct Ctx<'a> {
    pub now_ms: u64,
    pub caches: &'a mut Caches,
    /// Fetched keys (`id_token` signs with them); taken for each lookup, never across signing.
    pub jwks: &'a mut Place<JwksStore>,
}

/// What a mutator did, or the call it needs first.
pub enum MutateStep {
    Done,
    Failed(PipelineError),
    /// Make this call; its answer goes to the continuation.
    Call(Callout, Then),
}

/// A mutator's continuation: what it does with its call's answer.
pub struct Then(Box<Resume>);

type Resume = dyn FnOnce(CalloutResult, &mut Session<'_>, &mut Ctx<'_>) -> MutateStep;

impl Then {
    pub fn new(
        resume: impl FnOnce(CalloutResult, &mut Session<'_>, &mut Ctx<'_>) -> MutateStep + 'static,
    ) -> Then {
        Then(Box::new(resume))
    }

    pub fn resume(
        self,
        result: CalloutResult,
        session: &mut Session<'_>,
        ctx: &mut Ctx<'_>,
    ) -> MutateStep {
        (self.0)(result, session, ctx)
    }
}

impl From<Result<(), PipelineError>> for MutateStep {
    fn from(r: Result<(), PipelineError>) -> MutateStep {
        match r {
            Ok(()) => MutateStep::Done,
            Err(e) => MutateStep::Failed(e),
        }
    }
}

/// One mutator of a rule, built from its configuration.
pub trait Mutate: Debug + Send + Sync {
    /// Changes the session, or asks for a call whose answer goes to the continuation.
    fn start(self: Arc<Self>, session: &mut Session<'_>, ctx: &mut Ctx<'_>) -> MutateStep;
    /// Header names it may set upstream, lowercase (anti-spoofing strips them elsewhere).
    fn header_names(&self) -> Vec<&str>;
    /// Whether it signs tokens whose public keys the JWKS endpoint publishes.
    fn signs(&self) -> bool;
    /// The public key it signs with, as a JWK, once it has one.
    fn public_key(&self, ctx: &mut Ctx<'_>) -> Option<serde_json::Value>;
}

/// Builds one mutator from its merged config (`null` when it has none).
pub type Build =
    fn(serde_json::Value, &Clusters, &mut JwksRegistry) -> Result<Arc<dyn Mutate>, Invalid>;

/// Every mutator this build knows, by its Oathkeeper name.
pub const REGISTRY: &[(&str, Build)] = &[
    ("noop", noop::build),
    ("header", header::build),
    ("cookie", cookie::build),
    ("hydrator", hydrator::build),
    ("id_token", id_token::build),
];

/// A configured mutator: its name and the handler.
#[derive(Debug, Clone)]
pub struct Mutator {
    name: &'static str,
    handler: Arc<dyn Mutate>,
}

impl Mutator {
    /// The handler names this build knows, for config errors.
    pub fn names() -> impl Iterator<Item = &'static str> {
        registry::names(REGISTRY)
    }

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
        jwks: &mut JwksRegistry,
    ) -> Result<Mutator, Invalid> {
        let (name, build) = registry::entry(REGISTRY, name)?;
        Ok(Mutator {
            name,
            handler: build(or_empty(config), clusters, jwks)?,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn start(&self, session: &mut Session<'_>, ctx: &mut Ctx<'_>) -> MutateStep {
        Arc::clone(&self.handler).start(session, ctx)
    }

    pub fn header_names(&self) -> Vec<&str> {
        self.handler.header_names()
    }

    pub fn signs(&self) -> bool {
        self.handler.signs()
    }

    pub fn public_key(&self, ctx: &mut Ctx<'_>) -> Option<serde_json::Value> {
        self.handler.public_key(ctx)
    }
}
