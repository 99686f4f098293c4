//! Mutators: what the upstream learns about the caller.

pub mod header;

use crate::errors::PipelineError;
use crate::pipeline::session::Session;

#[derive(Debug, Clone)]
pub enum Mutator {
    Noop,
    Header(header::HeaderMutator),
}

impl Mutator {
    pub const NAMES: &'static [&'static str] = &["noop", "header"];

    pub fn build(name: &str, config: serde_json::Value) -> Result<Mutator, String> {
        match name {
            "noop" => Ok(Mutator::Noop),
            "header" => Ok(Mutator::Header(header::HeaderMutator::build(config)?)),
            other => Err(format!("unknown mutator {other:?}")),
        }
    }

    pub fn mutate(&self, session: &mut Session<'_>) -> Result<(), PipelineError> {
        match self {
            Mutator::Noop => Ok(()),
            Mutator::Header(h) => h.mutate(session),
        }
    }

    /// The header names this mutator can set, lowercase.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        let names: &[(String, crate::template::Template)] = match self {
            Mutator::Header(h) => &h.headers,
            Mutator::Noop => &[],
        };
        names.iter().map(|(n, _)| n.as_str())
    }
}
