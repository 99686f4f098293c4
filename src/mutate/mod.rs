//! Mutators: what the upstream learns about the caller.

mod caches;
pub mod cookie;
pub mod header;
pub mod hydrator;
pub mod id_token;

pub use caches::Caches;

use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;

#[derive(Debug, Clone)]
pub enum Mutator {
    Noop,
    Header(header::HeaderMutator),
    Cookie(cookie::CookieMutator),
    /// Runs in the pipeline itself: it needs a callout.
    Hydrator(Box<hydrator::Hydrator>),
    /// Runs in the pipeline itself: it needs the time and the VM's keys and tokens.
    IdToken(Box<id_token::IdToken>),
}

impl Mutator {
    pub const NAMES: &'static [&'static str] =
        &["noop", "header", "cookie", "hydrator", "id_token"];

    pub fn build(
        name: &str,
        config: serde_json::Value,
        clusters: &Clusters,
        jwks: &mut JwksRegistry,
    ) -> Result<Mutator, String> {
        match name {
            "id_token" => Ok(Mutator::IdToken(Box::new(id_token::IdToken::build(
                config, clusters, jwks,
            )?))),
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
            Mutator::Hydrator(_) | Mutator::IdToken(_) => Err(PipelineError::Internal(
                "this mutator runs in the pipeline, not here".into(),
            )),
        }
    }

    /// The header names this mutator can set, lowercase.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        let (names, cookie): (&[(String, crate::template::Template)], Option<&str>) = match self {
            Mutator::Header(h) => (&h.headers, None),
            Mutator::Cookie(_) => (&[], Some("cookie")),
            Mutator::Noop | Mutator::Hydrator(_) | Mutator::IdToken(_) => (&[], None),
        };
        names.iter().map(|(n, _)| n.as_str()).chain(cookie)
    }
}
