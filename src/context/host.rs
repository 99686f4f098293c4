//! What the HTTP-context logic needs from a proxy, as a trait.

use crate::cache::SharedData;
use crate::jose::crypto::{Backend, ProbeError};
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::effect::Reply;
use crate::vocab::log::LogLevel;

/// Shared data is part of the host: the core reads and writes it through `SharedData`.
pub trait Host: SharedData {
    /// The request headers, pseudo-headers included, values as raw bytes.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)>;
    fn set_request_header(&self, name: &str, value: &str);
    fn remove_request_header(&self, name: &str);
    /// The downstream connection's peer, `ip:port`.
    fn source_address(&self) -> Option<String>;
    /// The request body the proxy buffered, `size` bytes of it.
    fn request_body(&self, size: usize) -> Vec<u8>;
    /// Sends the call; the token identifies its answer. `None` when the host refuses it (for
    /// example an unknown cluster).
    fn dispatch(&self, callout: &Callout) -> Option<u32>;
    /// Reads the answer of the call being delivered.
    fn callout_result(&self, num_headers: usize, body_size: usize) -> CalloutResult;
    fn send_reply(&self, reply: &Reply);
    /// Lets a paused request continue upstream.
    fn resume_request(&self);
    fn now_ms(&self) -> u64;
    /// Queues the parked request `id` (another HTTP context of this VM) to start again once
    /// the current callback has returned and its effects are applied. A host never runs it on
    /// the caller's stack: the caller may still hold its own context, and the pipeline must
    /// never be re-entered.
    fn wake(&self, id: u32);
    fn log(&self, level: LogLevel, message: &str);
    /// Sets the root context's tick period (from any context of the VM); the next tick comes
    /// one period from now. 0 stops ticking.
    fn set_tick_period(&self, ms: u64);
    /// Declares filter state key `key` (`wasm.portcullis.<key>`) as a string, once per VM from
    /// the root context's configure. A host that cannot declare it stores bytes.
    fn declare_filter_state(&self, key: &str);
    /// Sets filter state key `key` (`wasm.portcullis.<key>`) of this request.
    fn set_filter_state(&self, key: &str, value: &str);
    /// Defines a stat family: its name and tag names. Called while a configuration loads (a
    /// native host allows no later definition); `None` when the host refuses it.
    fn define_metric(&self, kind: MetricKind, name: &str, tags: &[&str]) -> Option<u32>;
    /// Adds `by` to counter `id` for these tag values (one per tag name).
    fn increment_metric(&self, id: u32, values: &[&str], by: u64);
    /// Sets gauge `id`, or records a histogram sample, for these tag values.
    fn record_metric(&self, id: u32, values: &[&str], value: u64);
    /// The backend that checks and makes signatures: the proxy's own crypto where it has it
    /// and passes the known-answer probe (`jose::crypto::select`), else Rust and why.
    fn crypto(&self) -> (Backend, Option<ProbeError>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}
