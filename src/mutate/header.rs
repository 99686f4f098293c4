//! `header`: sets request headers from templates rendered against the session.

use super::{Ctx, Mutate, MutateStep};
use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::config::{Invalid, Kind};
use crate::template::Template;
use crate::vocab::effect::valid_header_name;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderConfig {
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct HeaderMutator {
    /// Lowercase header name and its compiled template.
    pub headers: Vec<(String, Template)>,
}

pub fn build(
    config: serde_json::Value,
    _: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Mutate>, Invalid> {
    Ok(Arc::new(HeaderMutator::build(config)?))
}

impl Mutate for HeaderMutator {
    fn start(self: Arc<Self>, session: &mut Session<'_>, _: &mut Ctx<'_>) -> MutateStep {
        self.mutate(session).into()
    }

    fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn signs(&self) -> bool {
        false
    }

    fn public_key(&self, _: &mut Ctx<'_>) -> Option<serde_json::Value> {
        None
    }
}

impl HeaderMutator {
    pub fn build(config: serde_json::Value) -> Result<HeaderMutator, Invalid> {
        let c: HeaderConfig = serde_json::from_value(config).map_err(Invalid::shape)?;
        let mut headers = Vec::with_capacity(c.headers.len());
        for (name, source) in c.headers {
            if !valid_header_name(&name) {
                return Err(Invalid::new("headers", Kind::NotAHeaderName(name)));
            }
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            ) {
                return Err(Invalid::new(
                    format!("headers.{name}"),
                    Kind::Explained("cannot be set by a mutator"),
                ));
            }
            let template = Template::compile(&source)
                .map_err(|e| Invalid::new(format!("headers.{name}"), e.into()))?;
            headers.push((lower, template));
        }
        Ok(HeaderMutator { headers })
    }

    fn mutate(&self, session: &mut Session<'_>) -> Result<(), PipelineError> {
        for (name, template) in &self.headers {
            let value = template
                .render(&*session)
                .map_err(|e| PipelineError::internal(e.rendering(format!("header {name}"))))?;
            session.header.set(name, value);
        }
        Ok(())
    }
}
