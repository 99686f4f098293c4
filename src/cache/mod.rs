//! Caches and the per-VM mutable state behind them: the session cache with single-flight (within
//! a VM and, through an in-flight marker in shared data, across VMs) and cross-worker sharing, and
//! the JWKS store. Everything here takes time as an input.

pub mod digest;
pub mod jwks;
pub mod lru;
pub mod place;
pub mod session;
mod slot;
pub mod weigh;

/// The proxy's shared key-value store (proxy-wasm shared data): one per VM id, visible to every
/// worker, never evicted by the host.
pub trait SharedData {
    /// The value and its CAS token.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes when `cas` is `None` or still current; `false` when another writer came first.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}
