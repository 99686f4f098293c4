//! `remote` and `remote_json`: ask a policy service over HTTP. `remote_json` posts a JSON payload
//! rendered from the session (how Ory Keto checks are written: `POST /relation-tuples/check`);
//! `remote` posts the original request body. 200 allows (copying the listed response headers
//! upstream), 403 denies, 429 is passed on, anything else is an error.

use super::{Authorize, AuthzStep, Then};
use crate::config::clusters::Clusters;
use crate::config::{Invalid, Kind};
use crate::template::{ExecError, Template};
use crate::vocab::callout::{Callout, CalloutResult, Target};
use crate::vocab::effect::{valid_header_name, valid_header_value};
use crate::vocab::rejection::PipelineError;
use crate::vocab::session::Session;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    remote: String,
    /// Required by `remote_json`, refused by `remote`.
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    forward_response_headers_to_upstream: Vec<String>,
    /// Oathkeeper's retry settings, accepted: Envoy's cluster owns retries and timeouts here.
    #[serde(default, rename = "retry")]
    _retry: Option<serde::de::IgnoredAny>,
}

/// What the call carries.
#[derive(Debug, Clone)]
enum Body {
    /// `remote_json`: the rendered payload.
    Payload(Template),
    /// `remote`: the original request body, with its content type.
    Request,
}

#[derive(Debug, Clone)]
pub struct Remote {
    name: &'static str,
    target: Target,
    body: Body,
    headers: Vec<(String, Template)>,
    /// Lowercase names copied from the answer into the upstream request.
    forward: Vec<String>,
}

pub fn build_remote(
    config: serde_json::Value,
    clusters: &Clusters,
) -> Result<Arc<dyn Authorize>, Invalid> {
    Ok(Arc::new(Remote::build("remote", config, clusters)?))
}

pub fn build_remote_json(
    config: serde_json::Value,
    clusters: &Clusters,
) -> Result<Arc<dyn Authorize>, Invalid> {
    Ok(Arc::new(Remote::build("remote_json", config, clusters)?))
}

impl Remote {
    /// `name` is `remote` or `remote_json`.
    pub fn build(
        name: &'static str,
        config: serde_json::Value,
        clusters: &Clusters,
    ) -> Result<Remote, Invalid> {
        let raw: RawConfig = serde_json::from_value(config).map_err(Invalid::shape)?;
        let target = clusters.resolve(&raw.remote).map_err(|e| e.at("remote"))?;
        let body = match (name, raw.payload) {
            ("remote_json", Some(p)) => {
                Body::Payload(Template::compile(&p).map_err(|e| Invalid::new("payload", e.into()))?)
            }
            ("remote_json", None) => return Err(Invalid::new("payload", Kind::Missing)),
            (_, None) => Body::Request,
            (_, Some(_)) => {
                return Err(Invalid::whole(Kind::Explained(
                    "payload belongs to remote_json; remote sends the request body",
                )))
            }
        };
        let mut headers = Vec::with_capacity(raw.headers.len());
        for (h, source) in raw.headers {
            if !valid_header_name(&h) {
                return Err(Invalid::new("headers", Kind::NotAHeaderName(h)));
            }
            let t = Template::compile(&source)
                .map_err(|e| Invalid::new(format!("headers.{h}"), e.into()))?;
            headers.push((h.to_ascii_lowercase(), t));
        }
        Ok(Remote {
            name,
            target,
            body,
            headers,
            forward: raw
                .forward_response_headers_to_upstream
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        })
    }

    /// The check to make for this session; `body` is the request body (`remote` only).
    fn callout(&self, session: &Session<'_>, body: &[u8]) -> Result<Callout, PipelineError> {
        let render = |t: &Template, what: String| {
            t.render(session).map_err(|e| RemoteError::Render {
                authorizer: self.name,
                what,
                error: e,
            })
        };
        let mut call = Callout::to(&self.target, "POST", self.target.path_and_query());
        let request = session.match_context.header;
        match &self.body {
            Body::Payload(t) => {
                let payload = render(t, "payload".into())?;
                if serde_json::from_str::<serde::de::IgnoredAny>(&payload).is_err() {
                    return Err(RemoteError::PayloadNotJson.into());
                }
                call.set_header("content-type", "application/json".into());
                call.body = Some(payload.into_bytes());
            }
            Body::Request => {
                if let Some(ct) = request.get("content-type") {
                    call.set_header("content-type", ct.to_string());
                }
                call.body = Some(body.to_vec());
            }
        }
        if let Some(auth) = request.get("authorization") {
            call.set_header("authorization", auth.to_string());
        }
        for (name, template) in &self.headers {
            let value = render(template, format!("headers.{name}"))?;
            if !valid_header_value(&value) {
                return Err(RemoteError::ControlCharacter {
                    authorizer: self.name,
                    header: name.clone(),
                }
                .into());
            }
            // Oathkeeper does not send a header whose template renders empty.
            if !value.is_empty() {
                call.set_header(name, value);
            }
        }
        Ok(call)
    }

    /// The verdict in the answer: the headers to forward upstream, or why not.
    fn verdict(&self, result: CalloutResult) -> Result<Vec<(String, String)>, PipelineError> {
        let (status, headers, _) = result.reached(&format!("the {} authorizer", self.name))?;
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
            429 => Err(PipelineError::rate_limited(headers)),
            status => Err(RemoteError::Answered {
                authorizer: self.name,
                status,
            }
            .into()),
        }
    }
}

/// Why a remote authorizer did not allow the request.
#[derive(Debug)]
pub enum RemoteError {
    /// A template (`payload`, `headers.NAME`) failed to render.
    Render {
        authorizer: &'static str,
        what: String,
        error: ExecError,
    },
    PayloadNotJson,
    ControlCharacter {
        authorizer: &'static str,
        header: String,
    },
    /// Any status but 200 and 429.
    Answered {
        authorizer: &'static str,
        status: u32,
    },
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Render {
                authorizer,
                what,
                error,
            } => write!(f, "{authorizer} {what}: {error}"),
            RemoteError::PayloadNotJson => f.write_str("payload is not a JSON text"),
            RemoteError::ControlCharacter { authorizer, header } => {
                write!(
                    f,
                    "{authorizer} headers.{header} would carry a control character"
                )
            }
            RemoteError::Answered { authorizer, status } => {
                write!(f, "the {authorizer} authorizer answered {status}")
            }
        }
    }
}

impl std::error::Error for RemoteError {}

impl From<RemoteError> for PipelineError {
    fn from(e: RemoteError) -> PipelineError {
        match e {
            RemoteError::Answered { status: 403, .. } => PipelineError::forbidden(e),
            // Envoy answers 503 itself when it cannot reach the service: an outage, as a failed
            // call is, whichever of the two it was.
            RemoteError::Answered {
                status: 502..=504, ..
            } => PipelineError::unavailable(e),
            _ => PipelineError::internal(e),
        }
    }
}

impl Authorize for Remote {
    fn start(self: Arc<Self>, session: &Session<'_>, body: &[u8]) -> AuthzStep {
        match self.callout(session, body) {
            Ok(call) => AuthzStep::Call(
                call,
                Then::new(move |result| match self.verdict(result) {
                    Ok(forwarded) => AuthzStep::Allow(forwarded),
                    Err(e) => AuthzStep::Deny(e),
                }),
            ),
            Err(e) => AuthzStep::Deny(e),
        }
    }

    fn needs_body(&self) -> bool {
        matches!(self.body, Body::Request)
    }

    fn header_names(&self) -> &[String] {
        &self.forward
    }
}
