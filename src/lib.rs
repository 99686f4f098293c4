//! portcullis: Ory Oathkeeper's access-rule pipeline as a proxy-wasm HTTP filter.
//!
//! Everything except `proxy` is a host-free core: it is driven with a request view, the current
//! time and callout responses, and answers with effects. `proxy` translates between the
//! proxy-wasm host and that core; only its ABI binding (`proxy::wasm`, behind the default `abi`
//! feature) names proxy-wasm.
//!
//! Layers, bottom first; each names only those below it (`tests/layers.rs` checks it):
//! `vocab` (request, session, callout, effect, rejection) → `template`, `rules`, `jose` →
//! `config` (the document, read) → `cache` → the handler families `authn`, `authz`, `mutate`,
//! `errors` (independent of each other) → `filter` (the compiled configuration) → `pipeline`
//! (one request's pass) → `proxy` (the adapter).
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
pub mod errors;
pub mod filter;
pub mod jose;
pub mod mutate;
pub mod pipeline;
pub mod proxy;
pub mod rules;
pub mod template;
pub mod vocab;
