//! What the core asks the proxy to do.

use super::callout::Callout;
use std::borrow::Cow;

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
    /// Tell the rest of the proxy one fact about the decided request: Envoy keeps it in the
    /// stream's filter state as `wasm.portcullis.<key>`, for the access log and RBAC. Never a
    /// credential. Fixed keys and values (`decision`, `allow`, a handler name) are not allocated.
    FilterState(Cow<'static, str>, Cow<'static, str>),
    Reply(Reply),
}

/// The namespace of the filter state keys (`FilterState`): `portcullis.subject` is read in
/// Envoy as `wasm.portcullis.subject`.
pub const FILTER_STATE_NAMESPACE: &str = "portcullis";

/// Whether `value` may travel in a header (RFC 9110 field-value, as Go's `net/http` checks it):
/// no control character but tab. CR, LF and NUL would end the header or the head early.
pub fn valid_header_value(value: &str) -> bool {
    !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Whether `name` is an RFC 9110 token, as header and cookie names must be.
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
