//! What the core asks the proxy to do.

use super::callout::Callout;

/// A response the filter sends itself instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Make this call; the request waits for its answer. The number is the exchange's own id
    /// for the call, echoed back with the result.
    Dispatch(u32, Callout),
    SetHeader(String, String),
    RemoveHeader(String),
    /// Let these parked requests (waiting on this one's callout) start again.
    Wake(Vec<u32>),
    /// Send the request upstream.
    Continue,
    Reply(Reply),
}
