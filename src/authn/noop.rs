//! `noop`: authenticates every request with an empty subject.

use super::{Authenticate, AuthnStep, Ctx, Input};
use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use std::sync::Arc;

#[derive(Debug)]
pub struct Noop;

pub fn build(
    _: serde_json::Value,
    _: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(Noop))
}

impl Authenticate for Noop {
    fn start(self: Arc<Self>, _: &Input<'_>, _: &mut Ctx<'_>) -> AuthnStep {
        AuthnStep::Authenticated {
            subject: String::new(),
            extra: Arc::new(serde_json::Value::Null),
        }
    }

    fn session_cache_entries(&self) -> usize {
        0
    }
}
