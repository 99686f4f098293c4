//! `anonymous`: a fixed subject for requests without an `Authorization` header.

use super::{parse, Authenticate, AuthnStep, Ctx, Input};
use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anonymous {
    #[serde(default = "default_subject")]
    pub subject: String,
}

fn default_subject() -> String {
    "anonymous".to_string()
}

pub fn build(
    config: serde_json::Value,
    _: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Authenticate>, Invalid> {
    Ok(Arc::new(parse::<Anonymous>(config)?))
}

impl Authenticate for Anonymous {
    fn start(self: Arc<Self>, input: &Input<'_>, _: &mut Ctx<'_>) -> AuthnStep {
        let authorization = input.request.headers.get("authorization");
        if authorization.is_some_and(|v| !v.is_empty()) {
            return AuthnStep::NotResponsible;
        }
        AuthnStep::Authenticated {
            subject: self.subject.clone(),
            extra: Arc::new(serde_json::Value::Null),
        }
    }

    fn session_cache_entries(&self) -> usize {
        0
    }
}
