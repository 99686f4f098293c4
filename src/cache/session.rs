//! The session cache Oathkeeper lacks: whoami answers keyed by a BLAKE2b-256 digest of everything that
//! changes them, bounded and LRU-evicted per VM, shared across workers through proxy shared
//! data, with single-flight so concurrent requests for one session make one call — in one VM
//! and across the VMs (workers) of one proxy.
//!
//! # Single-flight across workers
//! Each key has a shared-data slot (`portcullis.session.<n>`, `SLOTS` of them), which holds
//! nothing, a cached answer, or an in-flight marker. A request that misses everywhere claims
//! the slot with a marker, written with compare-and-swap against the slot's version it just
//! read, so of the workers that miss at once exactly one leads. The others find the marker
//! (the read they make anyway for a shared hit), park, and the root context polls the slot on
//! its tick, made fast (`POLL_TICK_MS`) while anyone waits: the leader's answer replaces the
//! marker and every waiter takes it.
//!
//! The marker carries its own end: the claim time plus the wait bound, the session store's
//! call timeout capped at `SHARED_WAIT_MAX_MS` (1 s). After it a waiter no longer waits: its
//! VM makes its own call (one per VM, through the in-VM single-flight), so a leader whose VM
//! died or whose call hangs stalls others for at most the bound. (A waiter that finds, when its
//! wait ends, a newer marker of another VM, a call started since, waits on that one.) A leader whose answer is not
//! shared (a rejection, or anything not cached) clears its marker at once, so the waiters of
//! other workers ask for themselves right away: rejections stay per VM, as they always were.
//!
//! Envoy's CAS cannot guard a key that does not exist (a write to a missing key always wins),
//! so `prepare` creates every slot, empty, at configure; a slot that is missing anyway (a host
//! that dropped it) is led without a marker.

use super::lru::Lru;
use super::slot::{self, marker, parse_slot, release, slot_key, write_shared, Slot};
use super::weigh::{json_bytes, Weigh};
use super::SharedData;
use crate::vocab::rejection::PipelineError;
use std::collections::HashMap;
use std::sync::Arc;

pub type Key = [u8; 32];

/// What a session check concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Session {
        subject: String,
        extra: Arc<serde_json::Value>,
    },
    Rejected(PipelineError),
}

impl Weigh for Outcome {
    fn bytes(&self) -> usize {
        match self {
            Outcome::Session { subject, extra } => 64 + subject.len() + json_bytes(extra),
            Outcome::Rejected(_) => 64,
        }
    }
}

/// What a lookup tells the authenticator to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Hit(Outcome),
    /// Another request is asking the session store, in this VM or in another; this one is
    /// parked until it answers (or, for another VM's call, until the wait bound).
    Wait,
    /// Nobody is asking: this request makes the call.
    Lead,
}

enum Flight {
    /// A request of this VM leads; `marker` is the end of the marker it wrote, if it did.
    Pending {
        waiters: Vec<u32>,
        since_ms: u64,
        marker: Option<u64>,
    },
    /// Another VM leads: the root's tick polls the slot until `until_ms`.
    Remote { waiters: Vec<u32>, until_ms: u64 },
    Done {
        outcome: Outcome,
        waiters: Vec<u32>,
        at_ms: u64,
    },
}

/// A parked waiter whose leader (in this VM) has not answered after this long leads itself.
const STALE_FLIGHT_MS: u64 = 30_000;
/// The longest a request waits for another VM's call: a healthy session store answers well
/// within it, and past it the waiting VM asks for itself (what every VM did before).
pub const SHARED_WAIT_MAX_MS: u64 = 1_000;
/// How often the root context polls the slots while requests wait on other VMs' calls.
pub const POLL_TICK_MS: u64 = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub shared_hits: u64,
    pub misses: u64,
    pub waits: u64,
    /// Requests parked behind another VM's call.
    pub shared_waits: u64,
    /// Waits for another VM's call that reached the bound without an answer.
    pub shared_wait_expiries: u64,
}

pub struct SessionCache {
    lru: Lru<Key, Outcome>,
    flights: HashMap<Key, Flight>,
    /// Requests wait on other VMs and the proxy has not yet been asked to tick fast.
    poll_wanted: bool,
    /// Fast ticking was asked for and not yet given back.
    polling: bool,
    /// Other VMs meet this one in the proxy's shared data (proxy-wasm). A cache the whole
    /// process shares (`Place::Process`) has no other VM: its flights are every worker's.
    slots: bool,
    pub stats: Stats,
}

impl SessionCache {
    /// One VM's cache, which meets the other VMs' in shared data.
    pub fn new(max_entries: usize, max_bytes: usize) -> SessionCache {
        SessionCache {
            lru: Lru::new(max_entries, max_bytes),
            flights: HashMap::new(),
            poll_wanted: false,
            polling: false,
            slots: true,
            stats: Stats::default(),
        }
    }

    /// The one cache of a process whose workers are threads: waiters of every worker park on
    /// its flights (their ids unique in the process), so each session key is asked once.
    pub fn process_wide(max_entries: usize, max_bytes: usize) -> SessionCache {
        SessionCache {
            slots: false,
            ..SessionCache::new(max_entries, max_bytes)
        }
    }

    pub fn evictions(&self) -> u64 {
        self.lru.evictions()
    }

    /// Creates the slots that do not exist yet, once per proxy (the first VM to configure):
    /// a marker can only be claimed with CAS on a slot that exists.
    pub fn prepare(shared: &dyn SharedData) {
        slot::prepare(shared);
    }

    /// The cache's answer for `key`, or whether to wait or lead. `wait_ms` bounds a wait for
    /// another VM's call (the caller's call timeout; capped at `SHARED_WAIT_MAX_MS`). A hit in
    /// this VM makes no host call; a miss reads the slot, and a leader writes its marker.
    pub fn lookup(
        &mut self,
        key: &Key,
        waiter: u32,
        now_ms: u64,
        wait_ms: u64,
        shared: &dyn SharedData,
    ) -> Lookup {
        if let Some(Flight::Done {
            outcome, waiters, ..
        }) = self.flights.get_mut(key)
        {
            if let Some(pos) = waiters.iter().position(|w| *w == waiter) {
                waiters.swap_remove(pos);
                let outcome = outcome.clone();
                if waiters.is_empty() {
                    self.flights.remove(key);
                }
                return Lookup::Hit(outcome);
            }
        }
        if let Some(o) = self.lru.get(key, now_ms) {
            self.stats.hits += 1;
            return Lookup::Hit(o.clone());
        }
        let read = if self.slots {
            shared.get(&slot_key(key))
        } else {
            None
        };
        let slot = read
            .as_ref()
            .map(|(value, _)| parse_slot(value, key, now_ms));
        if let Some(Slot::Answer(outcome, expires_ms)) = slot {
            self.stats.shared_hits += 1;
            self.lru.insert(*key, outcome.clone(), expires_ms);
            return Lookup::Hit(outcome);
        }
        let mut parked = Vec::new();
        match self.flights.get_mut(key) {
            Some(Flight::Pending {
                waiters, since_ms, ..
            }) if now_ms < *since_ms + STALE_FLIGHT_MS => {
                if !waiters.contains(&waiter) {
                    waiters.push(waiter);
                }
                self.stats.waits += 1;
                return Lookup::Wait;
            }
            Some(Flight::Remote { waiters, until_ms }) => {
                if now_ms < *until_ms {
                    if !waiters.contains(&waiter) {
                        waiters.push(waiter);
                    }
                    self.stats.shared_waits += 1;
                    return Lookup::Wait;
                }
                // The bound passed before a tick noticed: this request leads, the others wait
                // on it.
                self.stats.shared_wait_expiries += 1;
                parked = std::mem::take(waiters);
                parked.retain(|w| *w != waiter);
            }
            _ => {}
        }
        let wait_ms = wait_ms.min(SHARED_WAIT_MAX_MS);
        if let Some(Slot::Marker(until_ms)) = slot {
            // Another VM leads (a marker of this VM's own call has a Pending flight above).
            parked.push(waiter);
            return self.park_remote(key, parked, until_ms.min(now_ms + wait_ms));
        }
        let marker = match (&read, slot) {
            (Some((_, cas)), Some(Slot::Free)) => {
                let until_ms = now_ms + wait_ms;
                if shared.set(&slot_key(key), &marker(key, until_ms), Some(*cas)) {
                    Some(until_ms)
                } else {
                    // Another VM wrote first: if it claimed this key, wait on it.
                    let again = shared.get(&slot_key(key));
                    match again.map(|(v, _)| parse_slot(&v, key, now_ms)) {
                        Some(Slot::Marker(theirs)) => {
                            parked.push(waiter);
                            return self.park_remote(key, parked, theirs.min(now_ms + wait_ms));
                        }
                        Some(Slot::Answer(outcome, expires_ms)) => {
                            self.stats.shared_hits += 1;
                            self.lru.insert(*key, outcome.clone(), expires_ms);
                            if !parked.is_empty() {
                                // Parked requests are woken by the next tick, which finds
                                // the answer.
                                self.flights.insert(
                                    *key,
                                    Flight::Remote {
                                        waiters: parked,
                                        until_ms: now_ms,
                                    },
                                );
                            }
                            return Lookup::Hit(outcome);
                        }
                        _ => None,
                    }
                }
            }
            // No slot (never prepared), or another key's call holds it: lead unmarked.
            // (A live marker of this key was handled above.)
            _ => None,
        };
        self.sweep(now_ms);
        self.stats.misses += 1;
        self.flights.insert(
            *key,
            Flight::Pending {
                waiters: parked,
                since_ms: now_ms,
                marker,
            },
        );
        Lookup::Lead
    }

    /// Parks `waiters` behind another VM's call, live until `until_ms`.
    fn park_remote(&mut self, key: &Key, waiters: Vec<u32>, until_ms: u64) -> Lookup {
        self.flights
            .insert(*key, Flight::Remote { waiters, until_ms });
        self.stats.shared_waits += 1;
        if !self.polling {
            self.polling = true;
            self.poll_wanted = true;
        }
        Lookup::Wait
    }

    /// Keeps `outcome` for the parked `waiters` to collect when they are woken.
    fn hand_over(&mut self, key: &Key, waiters: Vec<u32>, outcome: Outcome, now_ms: u64) {
        if !waiters.is_empty() {
            self.flights.insert(
                *key,
                Flight::Done {
                    outcome,
                    waiters,
                    at_ms: now_ms,
                },
            );
        }
    }

    /// Records the leader's answer: cached until `cache_until` when given, shared with other
    /// workers when it is a session, and handed to the parked waiters, whose ids are returned
    /// so the proxy can wake them. A marker the answer does not replace is cleared.
    pub fn complete(
        &mut self,
        key: &Key,
        outcome: Outcome,
        cache_until: Option<u64>,
        now_ms: u64,
        shared: &dyn SharedData,
    ) -> Vec<u32> {
        let mut written = false;
        if let Some(until) = cache_until.filter(|u| *u > now_ms) {
            if self.slots && matches!(outcome, Outcome::Session { .. }) {
                written = write_shared(shared, key, &outcome, until);
            }
            self.lru.insert(*key, outcome.clone(), until);
        }
        let waiters = match self.flights.remove(key) {
            Some(Flight::Pending {
                waiters, marker, ..
            }) => {
                if let (Some(until_ms), false) = (marker, written) {
                    release(shared, key, until_ms);
                }
                waiters
            }
            _ => Vec::new(),
        };
        self.hand_over(key, waiters.clone(), outcome, now_ms);
        waiters
    }

    /// The leader went away without an answer: its marker is cleared, its waiters are woken
    /// and one of them leads.
    pub fn abandon(&mut self, key: &Key, shared: &dyn SharedData) -> Vec<u32> {
        match self.flights.remove(key) {
            Some(Flight::Pending {
                waiters, marker, ..
            }) => {
                if let Some(until_ms) = marker {
                    release(shared, key, until_ms);
                }
                waiters
            }
            Some(other) => {
                self.flights.insert(*key, other);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Whether the proxy should start ticking fast (`POLL_TICK_MS`): true once each time
    /// requests start waiting on other VMs.
    pub fn take_poll_wanted(&mut self) -> bool {
        std::mem::take(&mut self.poll_wanted)
    }

    /// Whether requests wait on other VMs (the root context keeps ticking fast).
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The root context's tick: looks at the slot of every key waited on in another VM. The
    /// answer goes to its waiters; a marker gone (its call over, its answer not shared) or past
    /// the bound lets them go to lead on their own. Returns the requests to wake.
    pub fn poll(&mut self, now_ms: u64, shared: &dyn SharedData) -> Vec<u32> {
        let mut wake = Vec::new();
        let remote: Vec<Key> = self
            .flights
            .iter()
            .filter(|(_, f)| matches!(f, Flight::Remote { .. }))
            .map(|(k, _)| *k)
            .collect();
        for key in remote {
            let Some(Flight::Remote { until_ms, .. }) = self.flights.get(&key) else {
                continue;
            };
            let until_ms = *until_ms;
            let slot = shared
                .get(&slot_key(&key))
                .map(|(v, _)| parse_slot(&v, &key, now_ms));
            let answer = match slot {
                Some(Slot::Marker(_)) if now_ms < until_ms => continue,
                Some(Slot::Answer(outcome, expires_ms)) => Some((outcome, expires_ms)),
                _ => None,
            };
            let Some(Flight::Remote { waiters, .. }) = self.flights.remove(&key) else {
                continue;
            };
            wake.extend(waiters.iter().copied());
            match answer {
                Some((outcome, expires_ms)) => {
                    self.stats.shared_hits += 1;
                    self.lru.insert(key, outcome.clone(), expires_ms);
                    self.hand_over(&key, waiters, outcome, now_ms);
                }
                None if now_ms >= until_ms => self.stats.shared_wait_expiries += 1,
                None => {}
            }
        }
        if !self
            .flights
            .values()
            .any(|f| matches!(f, Flight::Remote { .. }))
        {
            self.polling = false;
            self.poll_wanted = false;
        }
        wake
    }

    /// Drops answers that waiters which went away never collected. Waits on other VMs stay:
    /// the tick ends them.
    fn sweep(&mut self, now_ms: u64) {
        self.flights.retain(|_, f| match f {
            Flight::Done { at_ms, .. } => now_ms < *at_ms + STALE_FLIGHT_MS,
            Flight::Pending { since_ms, .. } => now_ms < *since_ms + STALE_FLIGHT_MS,
            Flight::Remote { .. } => true,
        });
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
