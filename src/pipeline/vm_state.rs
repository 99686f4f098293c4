//! What one VM (one Envoy worker) keeps between requests, reset with each configuration.

use crate::authn::{self, Authenticator};
use crate::cache::jwks::JwksStore;
use crate::filter::Filter;
use crate::mutate;
use crate::vocab::stats::Stats;

/// What one VM (one Envoy worker) remembers between requests; reset with each configuration.
/// Each handler family owns its part.
pub struct VmState {
    pub authn: authn::Caches,
    pub mutate: mutate::Caches,
    /// Keys fetched for `jwt` authenticators and `id_token` mutators.
    pub jwks: JwksStore,
    pub stats: Stats,
}

impl VmState {
    /// Empty caches sized for `filter`.
    pub fn new(filter: &Filter) -> VmState {
        let entries = filter
            .rules
            .iter()
            .flat_map(|r| r.authenticators.iter())
            .map(Authenticator::session_cache_entries)
            .max()
            .unwrap_or(0);
        VmState {
            authn: authn::Caches::new(entries),
            mutate: mutate::Caches::default(),
            jwks: JwksStore::new(filter.jwks_sources.len()),
            stats: Stats::default(),
        }
    }
}

impl VmState {
    /// What a mutator may use: the time, the mutators' caches, the fetched keys.
    pub fn mutate_ctx(&mut self, now_ms: u64) -> mutate::Ctx<'_> {
        mutate::Ctx {
            now_ms,
            caches: &mut self.mutate,
            jwks: &self.jwks,
        }
    }
}
