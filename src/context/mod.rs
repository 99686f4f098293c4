//! The context logic both bindings drive: what a proxy's HTTP context (`http`) and root context
//! (`root`) do with the core, written against the `Host` trait (`host`) so that it runs natively
//! under test and in the CLI. A binding (`proxy_wasm`, and `dynamic_module` natively) only
//! translates its proxy's callbacks into these calls and implements `Host` over its ABI.

pub mod host;
pub mod http;
pub mod in_flight;
pub mod metrics;
pub mod root;
mod trap;

/// Callout answers larger than this are treated as failed calls.
pub const MAX_CALLOUT_BODY: usize = 1 << 20;
