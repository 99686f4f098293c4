//! The pipeline on top of the handler families: one request's pass (`Exchange`), the state a
//! VM keeps between requests (`VmState`), and how a decision is reported (`Decision`).

pub mod decision;
mod exchange;
mod forward;
mod matched;
mod state;
mod trace_context;
mod vm_state;

pub use exchange::{Env, Exchange};
pub use vm_state::{Shared, VmState};
