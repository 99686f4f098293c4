//! Where a cache lives. A proxy-wasm build gives each Envoy worker a VM of its own, so a cache
//! is one VM's (`Place::Vm`) and workers meet through the proxy's shared data. A native build's
//! workers are threads of one process: a cache they must share (sessions, for one session-store
//! call per session in the whole proxy; key sets, fetched once) is the process's
//! (`Place::Process`), behind a lock taken only for the lookup or update itself, never across a
//! signature check, a template or a host call.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub enum Place<T> {
    Vm(T),
    Process(Arc<Mutex<T>>),
}

/// A cache, held for one lookup or update.
pub enum Held<'a, T> {
    Vm(&'a mut T),
    Process(MutexGuard<'a, T>),
}

impl<T> Place<T> {
    /// A cache for the whole process, and the handle every worker's `Place` is made from.
    pub fn process(value: T) -> Arc<Mutex<T>> {
        Arc::new(Mutex::new(value))
    }

    pub fn get(&mut self) -> Held<'_, T> {
        match self {
            Place::Vm(value) => Held::Vm(value),
            Place::Process(shared) => Held::Process(lock(shared)),
        }
    }

    /// Reads the cache (for stats): the lock is held while `f` runs.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        match self {
            Place::Vm(value) => f(value),
            Place::Process(shared) => f(&lock(shared)),
        }
    }

    /// Whether workers other than this one's see this cache (its stats are then the process's,
    /// published once, not once per worker).
    pub fn is_process(&self) -> bool {
        matches!(self, Place::Process(_))
    }
}

/// The lock, also after a panic while it was held. Nothing that runs under it panics (`src/`
/// denies it); if something did, the native binding's hook catches it and the request fails,
/// and the cache stays in use: every read of it is checked (`get`, never indexing), so the most
/// a half-made update costs is a miss.
pub fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Vm(value) => value,
            Held::Process(guard) => guard,
        }
    }
}

impl<T> DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            Held::Vm(value) => value,
            Held::Process(guard) => guard,
        }
    }
}
