//! Authorizers: whether the authenticated subject may proceed.

use crate::errors::PipelineError;

#[derive(Debug, Clone)]
pub enum Authorizer {
    Allow,
    Deny,
}

impl Authorizer {
    pub const NAMES: &'static [&'static str] = &["allow", "deny"];

    pub fn build(name: &str, _config: serde_json::Value) -> Result<Authorizer, String> {
        match name {
            "allow" => Ok(Authorizer::Allow),
            "deny" => Ok(Authorizer::Deny),
            other => Err(format!("unknown authorizer {other:?}")),
        }
    }

    pub fn authorize(&self) -> Result<(), PipelineError> {
        match self {
            Authorizer::Allow => Ok(()),
            Authorizer::Deny => Err(PipelineError::Forbidden(None)),
        }
    }
}
