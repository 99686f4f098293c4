//! `deny`: no request may proceed (403).

use super::{Authorize, AuthzStep};
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use std::sync::Arc;

#[derive(Debug)]
pub struct Deny;

pub fn build(_: serde_json::Value, _: &Clusters) -> Result<Arc<dyn Authorize>, Invalid> {
    Ok(Arc::new(Deny))
}

impl Authorize for Deny {
    fn start(self: Arc<Self>, _: &Session<'_>, _: &[u8]) -> AuthzStep {
        AuthzStep::Deny(PipelineError::Forbidden(None))
    }

    fn needs_body(&self) -> bool {
        false
    }

    fn header_names(&self) -> &[String] {
        &[]
    }
}
