//! `unauthorized`: rejects every request (401), ending the chain.

use super::{Authenticate, AuthnStep, Ctx, Input};
use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::vocab::rejection::PipelineError;
use std::sync::Arc;

#[derive(Debug)]
pub struct Unauthorized;

pub fn build(
    _: serde_json::Value,
    _: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(Unauthorized))
}

impl Authenticate for Unauthorized {
    fn start(self: Arc<Self>, _: &Input<'_>, _: &mut Ctx<'_>) -> AuthnStep {
        AuthnStep::Rejected(PipelineError::Unauthorized(None))
    }

    fn session_cache_entries(&self) -> usize {
        0
    }
}
