//! `remote_json`: asks a policy service with a JSON payload rendered from the session — how Ory
//! Keto checks are written (`POST /relation-tuples/check`). 200 allows (copying the listed
//! response headers upstream), 403 denies, 429 is passed on, anything else is an error.

use crate::config::clusters::{Clusters, Target};
use crate::errors::PipelineError;
use crate::pipeline::callout::{Callout, CalloutResult};
use crate::pipeline::session::Session;
use crate::template::Template;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    remote: String,
    payload: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    forward_response_headers_to_upstream: Vec<String>,
    /// Oathkeeper's retry settings, accepted: Envoy's cluster owns retries and timeouts here.
    #[serde(default, rename = "retry")]
    _retry: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone)]
pub struct RemoteJson {
    target: Target,
    payload: Template,
    headers: Vec<(String, Template)>,
    /// Lowercase names copied from the answer into the upstream request.
    pub forward: Vec<String>,
}

impl RemoteJson {
    pub fn build(config: serde_json::Value, clusters: &Clusters) -> Result<RemoteJson, String> {
        let raw: RawConfig = serde_json::from_value(config).map_err(|e| e.to_string())?;
        let target = clusters
            .resolve(&raw.remote)
            .map_err(|e| format!("remote: {e}"))?;
        let payload = Template::compile(&raw.payload).map_err(|e| format!("payload: {e}"))?;
        let mut headers = Vec::with_capacity(raw.headers.len());
        for (name, source) in raw.headers {
            let t = Template::compile(&source).map_err(|e| format!("headers.{name}: {e}"))?;
            headers.push((name.to_ascii_lowercase(), t));
        }
        Ok(RemoteJson {
            target,
            payload,
            headers,
            forward: raw
                .forward_response_headers_to_upstream
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        })
    }

    /// The check to make for this session.
    pub fn callout(&self, session: &Session<'_>) -> Result<Callout, PipelineError> {
        let render = |t: &Template, what: &str| {
            t.render(session)
                .map_err(|e| PipelineError::Internal(format!("remote_json {what}: {e}")))
        };
        let payload = render(&self.payload, "payload")?;
        if serde_json::from_str::<serde::de::IgnoredAny>(&payload).is_err() {
            return Err(PipelineError::Internal("payload is not a JSON text".into()));
        }
        let mut path = self.target.path.clone();
        if !self.target.query.is_empty() {
            path.push('?');
            path.push_str(&self.target.query);
        }
        let mut headers = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), path),
            (":authority".to_string(), self.target.authority.clone()),
            (":scheme".to_string(), self.target.scheme.clone()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        if let Some(auth) = session.match_context.header.get("authorization") {
            headers.push(("authorization".to_string(), auth.to_string()));
        }
        for (name, template) in &self.headers {
            let value = render(template, &format!("headers.{name}"))?;
            // Oathkeeper does not send a header whose template renders empty.
            if !value.is_empty() {
                headers.retain(|(k, _)| k != name);
                headers.push((name.clone(), value));
            }
        }
        Ok(Callout {
            cluster: self.target.cluster.clone(),
            headers,
            body: Some(payload.into_bytes()),
            timeout_ms: self.target.timeout_ms,
        })
    }

    /// The verdict in the answer: the headers to forward upstream, or why not.
    pub fn verdict(&self, result: CalloutResult) -> Result<Vec<(String, String)>, PipelineError> {
        let (status, headers) = match result {
            CalloutResult::Failed => {
                return Err(PipelineError::Unavailable(
                    "the remote_json authorizer could not be reached".into(),
                ))
            }
            CalloutResult::Response {
                status, headers, ..
            } => (status, headers),
        };
        match status {
            200 => Ok(self
                .forward
                .iter()
                .map(|name| {
                    let value = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    (name.clone(), value)
                })
                .collect()),
            403 => Err(PipelineError::Forbidden(Some(
                "the remote_json authorizer answered 403".into(),
            ))),
            429 => Err(PipelineError::rate_limited(headers)),
            other => Err(PipelineError::Internal(format!(
                "the remote_json authorizer answered {other}"
            ))),
        }
    }
}
