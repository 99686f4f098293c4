//! `cookie`: rewrites the `Cookie` header the upstream receives — the rule's cookies, rendered
//! from the session, first; then the caller's cookies whose names the rule does not set.

use super::{Ctx, Mutate, MutateStep};
use crate::cache::jwks::JwksRegistry;
use crate::config::clusters::Clusters;
use crate::config::{Invalid, Kind};
use crate::template::Template;
use crate::vocab::cookies::cookies;
use crate::vocab::effect::valid_header_name;
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieConfig {
    cookies: BTreeMap<String, String>,
}

/// A rendered cookie value that would end its pair or the header.
#[derive(Debug)]
pub struct UnsafeCookie(String);

impl std::fmt::Display for UnsafeCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cookie {} would carry ';' or a control character",
            self.0
        )
    }
}

impl std::error::Error for UnsafeCookie {}

#[derive(Debug, Clone)]
pub struct CookieMutator {
    cookies: Vec<(String, Template)>,
}

pub fn build(
    config: serde_json::Value,
    _: &Clusters,
    _: &mut JwksRegistry,
) -> Result<Arc<dyn Mutate>, Invalid> {
    Ok(Arc::new(CookieMutator::build(config)?))
}

impl Mutate for CookieMutator {
    fn start(self: Arc<Self>, session: &mut Session<'_>, _: &mut Ctx<'_>) -> MutateStep {
        self.mutate(session).into()
    }

    fn header_names(&self) -> Vec<&str> {
        vec!["cookie"]
    }

    fn signs(&self) -> bool {
        false
    }

    fn public_key(&self, _: &mut Ctx<'_>) -> Option<serde_json::Value> {
        None
    }
}

impl CookieMutator {
    pub fn build(config: serde_json::Value) -> Result<CookieMutator, Invalid> {
        let c: CookieConfig = serde_json::from_value(config).map_err(Invalid::shape)?;
        let mut cookies = Vec::with_capacity(c.cookies.len());
        for (name, source) in c.cookies {
            // RFC 6265 cookie-name: a token, as a header name is.
            if !valid_header_name(&name) {
                return Err(Invalid::new(
                    format!("cookies.{name}"),
                    Kind::Explained("is not a valid cookie name"),
                ));
            }
            let t = Template::compile(&source)
                .map_err(|e| Invalid::new(format!("cookies.{name}"), e.into()))?;
            cookies.push((name, t));
        }
        Ok(CookieMutator { cookies })
    }

    fn mutate(&self, session: &mut Session<'_>) -> Result<(), PipelineError> {
        let mut out = String::new();
        for (name, template) in &self.cookies {
            let value = template
                .render(&*session)
                .map_err(|e| PipelineError::internal(e.rendering(format!("cookie {name}"))))?;
            // A value that would end the pair or the header is refused, not smuggled.
            if value.bytes().any(|b| b == b';' || b < 0x20 || b == 0x7f) {
                return Err(PipelineError::internal(UnsafeCookie(name.clone())));
            }
            push(&mut out, name, &value);
        }
        for (name, value) in cookies(session.match_context.header) {
            if !self.cookies.iter().any(|(n, _)| n == name) {
                push(&mut out, name, value);
            }
        }
        session.header.set("cookie", out);
        Ok(())
    }
}

fn push(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push_str("; ");
    }
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}
