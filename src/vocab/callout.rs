//! Outgoing HTTP calls a handler asks for, and what comes back.

use super::rejection::PipelineError;

/// A URL resolved to where and how a callout goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub cluster: String,
    pub timeout_ms: u64,
    pub scheme: String,
    /// Host and port as written in the URL: the callout's `:authority`.
    pub authority: String,
    /// Path as written, `/` when empty.
    pub path: String,
    /// Query without `?`, empty when none.
    pub query: String,
}

impl Target {
    /// The URL's path and query, as a callout's `:path`.
    pub fn path_and_query(&self) -> String {
        let mut p = String::with_capacity(self.path.len() + self.query.len() + 1);
        p.push_str(&self.path);
        if !self.query.is_empty() {
            p.push('?');
            p.push_str(&self.query);
        }
        p
    }
}

/// A call the proxy makes on the pipeline's behalf; the request pauses until it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// The Envoy cluster (from `clusters`) the call goes to.
    pub cluster: String,
    /// Pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) first, then the rest.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl Callout {
    /// A call to `target` with its pseudo-headers; `path` is the path and query to send.
    pub fn to(target: &Target, method: &str, path: String) -> Callout {
        Callout {
            cluster: target.cluster.clone(),
            headers: vec![
                (":method".to_string(), method.to_string()),
                (":path".to_string(), path),
                (":authority".to_string(), target.authority.clone()),
                (":scheme".to_string(), target.scheme.clone()),
            ],
            body: None,
            timeout_ms: target.timeout_ms,
        }
    }

    /// Sets `name` (lowercase), replacing any earlier value.
    pub fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.to_string(), value));
    }
}

/// The answer to a callout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutResult {
    Response {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Reset, timeout, unknown cluster or an answer larger than allowed.
    Failed,
}

/// An answer's status, headers and body.
pub type Response = (u32, Vec<(String, String)>, Vec<u8>);

impl CalloutResult {
    /// Status, headers and body. A call that got no answer (reset, timeout, no such cluster,
    /// too large) leaves `dependency` ("the session store") unreachable: a 503.
    pub fn reached(self, dependency: &str) -> Result<Response, PipelineError> {
        match self {
            CalloutResult::Response {
                status,
                headers,
                body,
            } => Ok((status, headers, body)),
            CalloutResult::Failed => Err(PipelineError::unavailable(Unreachable(
                dependency.to_string(),
            ))),
        }
    }
}

/// A call that got no answer: the dependency it was for ("the session store").
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} could not be reached", self.0)
    }
}

impl std::error::Error for Unreachable {}
