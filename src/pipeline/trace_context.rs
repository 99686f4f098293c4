//! The incoming request's trace context, carried onto every call it causes so that the session
//! store's span joins the request's trace. Not part of any cache key.

use crate::vocab::callout::Callout;
use crate::vocab::request::Request;

const TRACE_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "x-request-id",
];

/// The callout with the request's trace context added.
pub fn with_trace_context(mut callout: Callout, request: &Request) -> Callout {
    for name in TRACE_HEADERS {
        let present = callout.headers.iter().any(|(k, _)| k == name);
        if let (false, Some(v)) = (present, request.headers.get(name)) {
            callout.headers.push((name.to_string(), v.to_string()));
        }
    }
    callout
}
