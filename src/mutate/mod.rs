//! Mutators: what the upstream learns about the caller.

pub mod cookie;
pub mod header;
pub mod hydrator;

use crate::config::clusters::Clusters;
use crate::errors::PipelineError;
use crate::pipeline::session::Session;

#[derive(Debug, Clone)]
pub enum Mutator {
    Noop,
    Header(header::HeaderMutator),
    Cookie(cookie::CookieMutator),
    /// Runs in the pipeline itself: it needs a callout.
    Hydrator(Box<hydrator::Hydrator>),
}

impl Mutator {
    pub const NAMES: &'static [&'static str] = &["noop", "header", "cookie", "hydrator"];

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
    ) -> Result<Mutator, String> {
        match name {
            "hydrator" => Ok(Mutator::Hydrator(Box::new(hydrator::Hydrator::build(
                config, clusters,
            )?))),
            "noop" => Ok(Mutator::Noop),
            "header" => Ok(Mutator::Header(header::HeaderMutator::build(config)?)),
            "cookie" => Ok(Mutator::Cookie(cookie::CookieMutator::build(config)?)),
            other => Err(format!("unknown mutator {other:?}")),
        }
    }

    pub fn mutate(&self, session: &mut Session<'_>) -> Result<(), PipelineError> {
        match self {
            Mutator::Noop => Ok(()),
            Mutator::Header(h) => h.mutate(session),
            Mutator::Cookie(c) => c.mutate(session),
            Mutator::Hydrator(_) => Err(PipelineError::Internal(
                "the hydrator runs in the pipeline, not here".into(),
            )),
        }
    }

    /// The header names this mutator can set, lowercase.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        let (names, cookie): (&[(String, crate::template::Template)], Option<&str>) = match self {
            Mutator::Header(h) => (&h.headers, None),
            Mutator::Cookie(_) => (&[], Some("cookie")),
            Mutator::Noop | Mutator::Hydrator(_) => (&[], None),
        };
        names.iter().map(|(n, _)| n.as_str()).chain(cookie)
    }
}
