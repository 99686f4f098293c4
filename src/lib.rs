//! portcullis: Ory Oathkeeper's access-rule pipeline as a proxy-wasm HTTP filter.
//!
//! Everything except `proxy` is a host-free core: it is driven with a request view, the current
//! time and callout responses, and answers with effects. `proxy` translates between the
//! proxy-wasm host and that core.
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
pub mod jose;
pub mod mutate;
pub mod percent;
pub mod pipeline;
pub mod proxy;
pub mod rules;
pub mod template;
pub mod time;
