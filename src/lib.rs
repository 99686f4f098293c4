//! portcullis: Ory Oathkeeper's access-rule pipeline inside the proxy, as a proxy-wasm HTTP filter
//! and as an Envoy dynamic module.
//!
//! Everything below `context` is a host-free core: it is driven with a request view, the current
//! time and callout responses, and answers with effects. `context` is the context logic that
//! turns a proxy's callbacks into those inputs and applies the effects through a `Host` trait.
//! Each binding implements `Host` over one ABI and names nothing of the other:
//! `proxy_wasm` (cargo feature `proxy-wasm`, the `.wasm`) and `dynamic_module` (cargo feature
//! `dynamic-module`, the native `libportcullis.so`).
//!
//! Layers, bottom first; each names only those below it (`tests/layers.rs` checks it):
//! `vocab` (request, session, callout, effect, rejection) → `template`, `rules`, `jose` →
//! `config` (the document, read) → `cache` → the handler families `authn`, `authz`, `mutate`,
//! `errors` (independent of each other) → `filter` (the compiled configuration) → `pipeline`
//! (one request's pass) → `context` (the context logic) → the bindings.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod authn;
pub mod authz;
pub mod cache;
pub mod config;
pub mod context;
pub mod errors;
pub mod filter;
pub mod jose;
pub mod mutate;
pub mod pipeline;
#[cfg(all(target_arch = "wasm32", feature = "proxy-wasm"))]
mod proxy_wasm;
pub mod rules;
pub mod template;
pub mod vocab;
