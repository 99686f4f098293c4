//! `deny`: no request may proceed (403).

use super::{Authorize, AuthzStep};
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use std::rc::Rc;

#[derive(Debug)]
pub struct Deny;

pub fn build(_: serde_json::Value, _: &Clusters) -> Result<Rc<dyn Authorize>, Invalid> {
    Ok(Rc::new(Deny))
}

impl Authorize for Deny {
    fn start(self: Rc<Self>, _: &Session<'_>, _: &[u8]) -> AuthzStep {
        AuthzStep::Deny(PipelineError::Forbidden(None))
    }

    fn needs_body(&self) -> bool {
        false
    }

    fn header_names(&self) -> &[String] {
        &[]
    }
}
