//! Outgoing HTTP calls a handler asks for, and what comes back.

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
