//! What the authenticators remember between requests in one VM (one Envoy worker): sessions
//! checked with a session store or an introspection endpoint, verified JWTs, and the tokens
//! portcullis was granted for its own calls. Reset with each configuration. Sessions may be the
//! whole process's (`Place::Process`, a native build); verified JWTs stay a worker's own, as
//! Envoy's `jwt_authn` keeps them: a cached token must cost no lock.

use super::jwt::Verified;
use crate::cache::digest::Digest;
use crate::cache::lru::Lru;
use crate::cache::place::Place;
use crate::cache::session::SessionCache;
use std::sync::Arc;
use std::sync::Mutex;

/// Bytes the session cache of one VM may hold.
const SESSION_CACHE_BYTES: usize = 32 << 20;
/// Verified JWTs one VM keeps.
const TOKEN_CACHE_ENTRIES: usize = 10_000;
const TOKEN_CACHE_BYTES: usize = 16 << 20;
/// Tokens of portcullis' own one VM keeps.
const GRANT_CACHE_ENTRIES: usize = 64;
const GRANT_CACHE_BYTES: usize = 1 << 20;

pub struct Caches {
    pub sessions: Place<SessionCache>,
    /// Verified JWTs by the token itself: a hash map's hash and one comparison cost a fraction
    /// of a digest of the whole token (about 1 KiB) on every request, and no two tokens can
    /// ever share an entry. The key counts toward the byte bound.
    pub tokens: Lru<Arc<str>, Verified>,
    /// Access tokens portcullis was granted for its own calls (`pre_authorization`).
    pub grants: Lru<Digest, String>,
}

impl Caches {
    /// `session_entries`: the largest session cache any configured handler asks for.
    pub fn new(session_entries: usize) -> Caches {
        Caches::with_sessions(Place::Vm(SessionCache::new(
            session_entries,
            SESSION_CACHE_BYTES,
        )))
    }

    /// The session cache a whole process shares, for `sharing`.
    pub fn process_sessions(session_entries: usize) -> Arc<Mutex<SessionCache>> {
        Place::process(SessionCache::process_wide(
            session_entries,
            SESSION_CACHE_BYTES,
        ))
    }

    /// One worker's caches around the process's session cache.
    pub fn sharing(sessions: &Arc<Mutex<SessionCache>>) -> Caches {
        Caches::with_sessions(Place::Process(Arc::clone(sessions)))
    }

    fn with_sessions(sessions: Place<SessionCache>) -> Caches {
        Caches {
            sessions,
            tokens: Lru::new(TOKEN_CACHE_ENTRIES, TOKEN_CACHE_BYTES),
            grants: Lru::new(GRANT_CACHE_ENTRIES, GRANT_CACHE_BYTES),
        }
    }
}
