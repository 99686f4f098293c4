//! JWKS documents by URL, kept the way Envoy's `jwt_authn` fetches them asynchronously, and
//! better. Fetches are callouts started from the root context's tick (Envoy drops calls made
//! from `on_configure`). Keys are refreshed every `jwks_ttl` in the background while requests
//! keep using the ones they have; an unknown `kid` asks for one rate-limited refetch; failures
//! back off and keep the stale keys. Workers share one copy through shared data: a small meta
//! entry (lease and version) is taken with CAS so one worker fetches per refresh, and the
//! others re-parse only when the version changes.

use super::SharedData;
use crate::config::clusters::Clusters;
use crate::config::Invalid;
use crate::jose::crypto::Backend;
use crate::jose::jwk::KeySet;
use crate::vocab::callout::Target;
use crate::vocab::callout::{Callout, CalloutResult};
use std::sync::Arc;

pub const DEFAULT_JWKS_TTL_MS: u64 = 30_000;
pub const DEFAULT_JWKS_MAX_WAIT_MS: u64 = 1_000;

/// The global JWKS settings and the sources every `jwt` handler registered so far.
#[derive(Debug, Default)]
pub struct JwksRegistry {
    pub sources: Vec<Source>,
    pub ttl_ms: u64,
    pub max_wait_ms: u64,
}

impl JwksRegistry {
    /// The index of `url`'s source, added when new.
    pub fn register(&mut self, url: &str, clusters: &Clusters) -> Result<usize, Invalid> {
        if let Some(i) = self.sources.iter().position(|s| s.url == url) {
            return Ok(i);
        }
        let target = clusters.resolve(url).map_err(|e| e.at("jwks_urls"))?;
        self.sources.push(Source::new(url, target, self.ttl_ms));
        Ok(self.sources.len() - 1)
    }
}

/// Documents larger than this are refused (real key sets are a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// An unknown `kid` triggers at most one refetch per URL and worker in this interval.
pub const REFETCH_INTERVAL_MS: u64 = 10_000;
const BACKOFF_MIN_MS: u64 = 1_000;
const BACKOFF_MAX_MS: u64 = 60_000;

/// One `jwks_urls` entry, resolved when the configuration is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub url: String,
    pub target: Target,
    pub ttl_ms: u64,
    /// Shared-data key prefix: a hash of the URL, so any URL makes a valid key.
    key: String,
}

impl Source {
    pub fn new(url: &str, target: Target, ttl_ms: u64) -> Source {
        let h = super::digest::digest(url.as_bytes());
        let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Source {
            url: url.to_string(),
            target,
            ttl_ms,
            key: format!("portcullis.jwks.{hex}"),
        }
    }

    fn meta_key(&self) -> String {
        format!("{}.meta", self.key)
    }

    fn callout(&self) -> Callout {
        let mut path = self.target.path.clone();
        if !self.target.query.is_empty() {
            path.push('?');
            path.push_str(&self.target.query);
        }
        Callout {
            cluster: self.target.cluster.clone(),
            headers: vec![
                (":method".into(), "GET".into()),
                (":path".into(), path),
                (":authority".into(), self.target.authority.clone()),
                (":scheme".into(), self.target.scheme.clone()),
                ("accept".into(), "application/json".into()),
            ],
            body: None,
            timeout_ms: self.target.timeout_ms,
        }
    }
}

/// The shared meta entry: who may fetch until when, which fetch the shared body is, and how
/// many fetches in a row failed. The count is shared so that a success on any worker ends
/// every worker's backoff, and each failure doubles it once, whichever worker made the call.
#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    /// No worker starts a fetch before this (a fetch in flight, or a failure's backoff).
    held_until_ms: u64,
    /// When the shared body was fetched; 0 when there is none.
    version_ms: u64,
    /// Consecutive failed fetches, by any worker; 0 after a success.
    failures: u64,
}

impl Meta {
    fn read(shared: &dyn SharedData, source: &Source) -> (Meta, Option<u32>) {
        match shared.get(&source.meta_key()) {
            Some((v, cas)) => {
                let word = |i: usize| {
                    v.get(i * 8..i * 8 + 8)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map_or(0, u64::from_le_bytes)
                };
                (
                    Meta {
                        held_until_ms: word(0),
                        version_ms: word(1),
                        failures: word(2),
                    },
                    Some(cas),
                )
            }
            None => (Meta::default(), None),
        }
    }

    fn write(self, shared: &dyn SharedData, source: &Source, cas: Option<u32>) -> bool {
        let words = [self.held_until_ms, self.version_ms, self.failures];
        let mut v = [0u8; 24];
        for (bytes, word) in v.chunks_exact_mut(8).zip(words) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        shared.set(&source.meta_key(), &v, cas)
    }
}

#[derive(Debug, Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// The document the keys came from (the `id_token` mutator reads its private key there).
    document: Option<Arc<[u8]>>,
    /// When the keys we hold were fetched, by this worker or another.
    fetched_at_ms: u64,
    in_flight: bool,
    /// A token named a `kid` we do not have: fetch again at the next tick.
    refetch_wanted: bool,
    last_refetch_ms: Option<u64>,
    /// Parked requests and when they give up.
    waiters: Vec<(u32, u64)>,
}

/// Counters for stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub fetches: u64,
    pub failures: u64,
    /// Key sets taken from another worker's fetch.
    pub adopted: u64,
}

/// The key sets of one VM.
#[derive(Debug, Default)]
pub struct JwksStore {
    states: Vec<State>,
    pub counters: Counters,
    /// Who checks the signatures these keys verify and make (chosen by the proxy at configure).
    pub crypto: Backend,
}

/// What a request should do when no key fits its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Keys are coming: park until woken.
    Wait,
    /// No fetch will help in time.
    GiveUp,
}

impl JwksStore {
    pub fn new(sources: usize) -> JwksStore {
        JwksStore {
            states: (0..sources).map(|_| State::default()).collect(),
            counters: Counters::default(),
            crypto: Backend::default(),
        }
    }

    pub fn keys(&self, source: usize) -> Option<&Arc<KeySet>> {
        self.states.get(source).and_then(|s| s.keys.as_ref())
    }

    /// The current document of `source` and when it was fetched (its version).
    pub fn document(&self, source: usize) -> Option<(u64, Arc<[u8]>)> {
        let s = self.states.get(source)?;
        s.document
            .as_ref()
            .map(|d| (s.fetched_at_ms, Arc::clone(d)))
    }

    /// Creates the shared meta entries that do not exist yet. Called from `on_configure`, before
    /// any tick: Envoy's CAS cannot guard a key that does not exist, so without this two
    /// workers' first ticks could both take the lease.
    pub fn prepare(sources: &[Source], shared: &dyn SharedData) {
        for source in sources {
            if shared.get(&source.meta_key()).is_none() {
                Meta::default().write(shared, source, None);
            }
        }
    }

    /// Whether every source has had keys at least once.
    pub fn ready(&self) -> bool {
        self.states.iter().all(|s| s.keys.is_some())
    }

    /// A request found no key for its `kid` in `source`. Without keys it waits for the first
    /// fetch; with keys, for one rate-limited refetch. Either way no longer than `deadline_ms`.
    pub fn missing(
        &mut self,
        source: usize,
        waiter: u32,
        deadline_ms: u64,
        now_ms: u64,
    ) -> Missing {
        let Some(s) = self.states.get_mut(source) else {
            return Missing::GiveUp;
        };
        if now_ms >= deadline_ms {
            return Missing::GiveUp;
        }
        if s.keys.is_some() && !s.refetch_wanted {
            if s.last_refetch_ms
                .is_some_and(|t| now_ms < t.saturating_add(REFETCH_INTERVAL_MS))
            {
                return Missing::GiveUp;
            }
            s.refetch_wanted = true;
            s.last_refetch_ms = Some(now_ms);
        }
        if !s.waiters.iter().any(|(w, _)| *w == waiter) {
            s.waiters.push((waiter, deadline_ms));
        }
        Missing::Wait
    }

    /// Adopts what other workers fetched, starts the fetches that are due and that this worker
    /// wins the lease for, and lets go of requests whose wait is over. Returns the calls to
    /// make (by source) and the requests to wake.
    pub fn on_tick(
        &mut self,
        sources: &[Source],
        now_ms: u64,
        shared: &dyn SharedData,
    ) -> (Vec<(usize, Callout)>, Vec<u32>) {
        let mut calls = Vec::new();
        let mut wake = Vec::new();
        let spki = self.crypto.reads_spki();
        for (i, (source, s)) in sources.iter().zip(self.states.iter_mut()).enumerate() {
            let (meta, cas) = Meta::read(shared, source);
            if meta.version_ms > s.fetched_at_ms && adopt(source, s, meta.version_ms, shared, spki)
            {
                self.counters.adopted += 1;
                wake.extend(s.waiters.drain(..).map(|(w, _)| w));
            }
            let due = s.keys.is_none()
                || s.refetch_wanted
                || now_ms >= s.fetched_at_ms.saturating_add(source.ttl_ms);
            if due && !s.in_flight && meta.held_until_ms <= now_ms {
                let lease = Meta {
                    held_until_ms: now_ms + source.target.timeout_ms + 1_000,
                    ..meta
                };
                if lease.write(shared, source, cas) {
                    s.in_flight = true;
                    self.counters.fetches += 1;
                    calls.push((i, source.callout()));
                }
            }
            s.waiters.retain(|&(w, deadline)| {
                let keep = deadline > now_ms;
                if !keep {
                    wake.push(w);
                }
                keep
            });
        }
        (calls, wake)
    }

    /// Takes a fetch's answer: new keys replace the old ones and go to shared data; a failure
    /// backs off (for every worker, through the lease) and keeps the stale keys. Every parked
    /// request is woken to look again.
    pub fn on_fetched(
        &mut self,
        sources: &[Source],
        source: usize,
        result: CalloutResult,
        now_ms: u64,
        shared: &dyn SharedData,
    ) -> Vec<u32> {
        let (Some(src), Some(s)) = (sources.get(source), self.states.get_mut(source)) else {
            return Vec::new();
        };
        s.in_flight = false;
        s.refetch_wanted = false;
        let parsed = match result {
            CalloutResult::Response {
                status: 200, body, ..
            } if body.len() <= MAX_JWKS_BYTES => KeySet::parse(&body, self.crypto.reads_spki())
                .ok()
                .map(|k| (k, body)),
            _ => None,
        };
        let (meta, _) = Meta::read(shared, src);
        match parsed {
            Some((keys, body)) => {
                s.keys = Some(Arc::new(keys));
                s.document = Some(Arc::from(body.as_slice()));
                s.fetched_at_ms = now_ms;
                // The body first: a worker that sees the new version must find the new body.
                shared.set(&src.key, &body, None);
                Meta {
                    held_until_ms: 0,
                    version_ms: now_ms,
                    failures: 0,
                }
                .write(shared, src, None);
            }
            None => {
                self.counters.failures += 1;
                let failures = meta.failures.saturating_add(1);
                let backoff = BACKOFF_MIN_MS
                    .saturating_mul(1u64 << failures.min(7).saturating_sub(1))
                    .min(BACKOFF_MAX_MS);
                Meta {
                    held_until_ms: now_ms + backoff,
                    failures,
                    ..meta
                }
                .write(shared, src, None);
            }
        }
        s.waiters.drain(..).map(|(w, _)| w).collect()
    }
}

/// Takes the shared body of `version`; `true` when the keys changed.
fn adopt(
    source: &Source,
    s: &mut State,
    version: u64,
    shared: &dyn SharedData,
    spki: bool,
) -> bool {
    let Some((body, _)) = shared.get(&source.key) else {
        return false;
    };
    match KeySet::parse(&body, spki) {
        Ok(keys) => {
            s.keys = Some(Arc::new(keys));
            s.document = Some(Arc::from(body.as_slice()));
            s.fetched_at_ms = version;
            s.refetch_wanted = false;
            true
        }
        Err(_) => false,
    }
}
