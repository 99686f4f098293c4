//! Caches and the per-VM mutable state behind them: the session cache with single-flight and
//! cross-worker sharing. Everything here takes time as an input.

pub mod lru;
pub mod session;

/// The proxy's shared key-value store (proxy-wasm shared data): one per VM id, visible to every
/// worker, never evicted by the host.
pub trait SharedData {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Last writer wins; a failed write only costs a later miss.
    fn set(&self, key: &str, value: &[u8]);
}
