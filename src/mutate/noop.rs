//! `noop`: leaves the request as it is.

use super::{Ctx, Mutate, MutateStep};
use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::vocab::session::Session;
use std::sync::Arc;

#[derive(Debug)]
pub struct Noop;

pub fn build(
    _: serde_json::Value,
    _: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Mutate>, Invalid> {
    Ok(Arc::new(Noop))
}

impl Mutate for Noop {
    fn start(self: Arc<Self>, _: &mut Session<'_>, _: &mut Ctx<'_>) -> MutateStep {
        MutateStep::Done
    }

    fn header_names(&self) -> Vec<&str> {
        Vec::new()
    }

    fn signs(&self) -> bool {
        false
    }

    fn public_key(&self, _: &mut Ctx<'_>) -> Option<serde_json::Value> {
        None
    }
}
