//! The proxy-wasm adapter: translates host callbacks into the core's inputs and its effects
//! into host calls. `host` is the seam (a trait, so the HTTP-context logic runs natively under
//! test), `http` is that logic, and `wasm` binds it to the real proxy-wasm ABI (`raw_abi`:
//! the calls it makes without the SDK).

pub mod host;
pub mod http;
pub mod in_flight;
pub mod metrics;
#[cfg(all(target_arch = "wasm32", feature = "abi"))]
mod raw_abi;
pub mod root;
mod trap;
#[cfg(all(target_arch = "wasm32", feature = "abi"))]
mod wasm;

/// Callout answers larger than this are treated as failed calls.
pub const MAX_CALLOUT_BODY: usize = 1 << 20;
