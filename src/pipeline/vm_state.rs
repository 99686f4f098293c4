//! What one VM (one Envoy worker) keeps between requests, reset with each configuration, and
//! the part a native build's workers share (`Shared`).

use crate::authn::{self, Authenticator};
use crate::cache::jwks::JwksStore;
use crate::cache::place::Place;
use crate::cache::session::SessionCache;
use crate::filter::Filter;
use crate::mutate;
use crate::vocab::stats::Stats;
use std::sync::{Arc, Mutex};

/// What one VM (one Envoy worker) remembers between requests; reset with each configuration.
/// Each handler family owns its part.
pub struct VmState {
    pub authn: authn::Caches,
    pub mutate: mutate::Caches,
    /// Keys fetched for `jwt` authenticators and `id_token` mutators.
    pub jwks: Place<JwksStore>,
    pub stats: Stats,
}

/// The caches every worker of one process shares when workers are threads (a native build):
/// the session cache, so that one session is asked about once in the whole proxy, and the key
/// sets, fetched once. Made once per configuration; each worker's `VmState` holds a handle.
#[derive(Clone)]
pub struct Shared {
    pub sessions: Arc<Mutex<SessionCache>>,
    pub jwks: Arc<Mutex<JwksStore>>,
}

impl Shared {
    pub fn new(filter: &Filter) -> Shared {
        Shared {
            sessions: authn::Caches::process_sessions(session_entries(filter)),
            jwks: Place::process(JwksStore::new(filter.jwks_sources.len())),
        }
    }
}

/// The largest session cache any configured handler asks for.
fn session_entries(filter: &Filter) -> usize {
    filter
        .rules
        .iter()
        .flat_map(|r| r.authenticators.iter())
        .map(Authenticator::session_cache_entries)
        .max()
        .unwrap_or(0)
}

impl VmState {
    /// Empty caches sized for `filter`, all this VM's own.
    pub fn new(filter: &Filter) -> VmState {
        VmState {
            authn: authn::Caches::new(session_entries(filter)),
            mutate: mutate::Caches::default(),
            jwks: Place::Vm(JwksStore::new(filter.jwks_sources.len())),
            stats: Stats::default(),
        }
    }

    /// One worker's state around the caches the process shares.
    pub fn sharing(shared: &Shared) -> VmState {
        VmState {
            authn: authn::Caches::sharing(&shared.sessions),
            mutate: mutate::Caches::default(),
            jwks: Place::Process(Arc::clone(&shared.jwks)),
            stats: Stats::default(),
        }
    }

    /// What a mutator may use: the time, the mutators' caches, the fetched keys.
    pub fn mutate_ctx(&mut self, now_ms: u64) -> mutate::Ctx<'_> {
        mutate::Ctx {
            now_ms,
            caches: &mut self.mutate,
            jwks: &mut self.jwks,
        }
    }
}
