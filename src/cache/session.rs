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
use super::weigh::{json_bytes, Weigh};
use super::SharedData;
use crate::vocab::rejection::PipelineError;
use std::collections::HashMap;
use std::rc::Rc;

pub type Key = [u8; 32];

/// What a session check concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Session {
        subject: String,
        extra: Rc<serde_json::Value>,
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

/// Shared-data slots: the key space is bounded because the host never evicts shared data.
const SLOTS: u32 = 4096;
/// A parked waiter whose leader (in this VM) has not answered after this long leads itself.
const STALE_FLIGHT_MS: u64 = 30_000;
/// The longest a request waits for another VM's call: a healthy session store answers well
/// within it, and past it the waiting VM asks for itself (what every VM did before).
pub const SHARED_WAIT_MAX_MS: u64 = 1_000;
/// How often the root context polls the slots while requests wait on other VMs' calls.
pub const POLL_TICK_MS: u64 = 10;
/// Written once every slot exists (see `prepare`).
const PREPARED_KEY: &str = "portcullis.session.prepared";
/// A marker is exactly this long: key (32) | until_ms (8, LE). Answers are longer.
const MARKER_LEN: usize = 40;
/// What an unclaimed slot holds: not empty, because the proxy-wasm SDK reads an empty value as
/// no value (a null buffer), and a slot must be seen to exist to be claimed.
const FREE: &[u8] = &[0];

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
    pub stats: Stats,
}

/// What a slot holds, for one key.
enum Slot {
    /// The key's answer, valid until the given time.
    Answer(Outcome, u64),
    /// A marker for the key, live until the given time.
    Marker(u64),
    /// A live marker of another key.
    Busy,
    /// Nothing live: empty, expired, or another key's answer.
    Free,
}

impl SessionCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> SessionCache {
        SessionCache {
            lru: Lru::new(max_entries, max_bytes),
            flights: HashMap::new(),
            poll_wanted: false,
            polling: false,
            stats: Stats::default(),
        }
    }

    pub fn evictions(&self) -> u64 {
        self.lru.evictions()
    }

    /// Creates the slots that do not exist yet, once per proxy (the first VM to configure):
    /// a marker can only be claimed with CAS on a slot that exists.
    pub fn prepare(shared: &dyn SharedData) {
        if shared.get(PREPARED_KEY).is_some() {
            return;
        }
        for slot in 0..SLOTS {
            let key = slot_name(slot);
            if shared.get(&key).is_none() {
                shared.set(&key, FREE, None);
            }
        }
        shared.set(PREPARED_KEY, &[1], None);
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
        let read = shared.get(&slot_key(key));
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

    /// Hands `outcome` to parked requests that found it some other way than the call.
    fn wake_all(&mut self, key: &Key, waiters: Vec<u32>, outcome: &Outcome, now_ms: u64) {
        if !waiters.is_empty() {
            self.flights.insert(
                *key,
                Flight::Done {
                    outcome: outcome.clone(),
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
            if matches!(outcome, Outcome::Session { .. }) {
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
        if !waiters.is_empty() {
            self.flights.insert(
                *key,
                Flight::Done {
                    outcome,
                    waiters: waiters.clone(),
                    at_ms: now_ms,
                },
            );
        }
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
                    self.wake_all(&key, waiters, &outcome, now_ms);
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

fn slot_name(slot: u32) -> String {
    format!("portcullis.session.{slot}")
}

fn slot_key(key: &Key) -> String {
    slot_name(u32::from_le_bytes([key[0], key[1], key[2], key[3]]) % SLOTS)
}

fn marker(key: &Key, until_ms: u64) -> [u8; MARKER_LEN] {
    let mut m = [0u8; MARKER_LEN];
    let (k, until) = m.split_at_mut(32);
    k.copy_from_slice(key);
    until.copy_from_slice(&until_ms.to_le_bytes());
    m
}

/// Clears this VM's marker, if the slot still holds it (CAS: a later claim is left alone).
fn release(shared: &dyn SharedData, key: &Key, until_ms: u64) {
    if let Some((value, cas)) = shared.get(&slot_key(key)) {
        if value == marker(key, until_ms) {
            shared.set(&slot_key(key), FREE, Some(cas));
        }
    }
}

/// Value: key (32) | expires_ms (8, LE) | subject length (4, LE) | subject | extra JSON.
/// Last writer wins (it replaces a marker too): a lost write only costs another worker a miss.
fn write_shared(shared: &dyn SharedData, key: &Key, outcome: &Outcome, expires_ms: u64) -> bool {
    let Outcome::Session { subject, extra } = outcome else {
        return false;
    };
    let extra = extra.to_string();
    let Ok(subject_len) = u32::try_from(subject.len()) else {
        return false;
    };
    let mut value = Vec::with_capacity(44 + subject.len() + extra.len());
    value.extend_from_slice(key);
    value.extend_from_slice(&expires_ms.to_le_bytes());
    value.extend_from_slice(&subject_len.to_le_bytes());
    value.extend_from_slice(subject.as_bytes());
    value.extend_from_slice(extra.as_bytes());
    shared.set(&slot_key(key), &value, None)
}

fn parse_slot(value: &[u8], key: &Key, now_ms: u64) -> Slot {
    let Some(until) = value
        .get(32..40)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
    else {
        return Slot::Free;
    };
    let ours = value.get(..32) == Some(key.as_slice());
    let live = until > now_ms;
    match (value.len() == MARKER_LEN, ours, live) {
        (_, _, false) => Slot::Free,
        (true, true, true) => Slot::Marker(until),
        (true, false, true) => Slot::Busy,
        (false, false, true) => Slot::Free,
        (false, true, true) => match read_answer(value) {
            Some(outcome) => Slot::Answer(outcome, until),
            None => Slot::Free,
        },
    }
}

fn read_answer(value: &[u8]) -> Option<Outcome> {
    let subject_len = u32::from_le_bytes(value.get(40..44)?.try_into().ok()?) as usize;
    let subject = std::str::from_utf8(value.get(44..44 + subject_len)?).ok()?;
    let extra: serde_json::Value = serde_json::from_slice(value.get(44 + subject_len..)?).ok()?;
    Some(Outcome::Session {
        subject: subject.to_string(),
        extra: Rc::new(extra),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap as Map;

    /// Envoy's shared data: a CAS that is given must be current; a missing key takes any write.
    #[derive(Default)]
    struct Shared(RefCell<(Store, u32)>);
    type Store = Map<String, (Vec<u8>, u32)>;
    impl SharedData for Shared {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.0.borrow().0.get(key).cloned()
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            let mut s = self.0.borrow_mut();
            let current = s.0.get(key).map(|(_, c)| *c);
            if let (Some(cas), Some(current)) = (cas, current) {
                if cas != current {
                    return false;
                }
            }
            s.1 += 1;
            let next = s.1;
            s.0.insert(key.to_string(), (value.to_vec(), next));
            true
        }
    }

    /// Shared data as a proxy has it after the first configure.
    fn prepared() -> Shared {
        let shared = Shared::default();
        SessionCache::prepare(&shared);
        shared
    }

    const T: u64 = 5_000;

    fn cache() -> SessionCache {
        SessionCache::new(10, 1 << 20)
    }

    fn session(s: &str) -> Outcome {
        Outcome::Session {
            subject: s.into(),
            extra: Rc::new(serde_json::json!({"id": s})),
        }
    }

    #[test]
    fn single_flight_then_cache() {
        let shared = prepared();
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [1u8; 32];
        assert_eq!(c.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k, 2, 1, T, &shared), Lookup::Wait);
        assert_eq!(c.lookup(&k, 3, 1, T, &shared), Lookup::Wait);
        let woken = c.complete(&k, session("u"), Some(100), 2, &shared);
        assert_eq!(woken, vec![2, 3]);
        assert_eq!(c.lookup(&k, 2, 3, T, &shared), Lookup::Hit(session("u")));
        assert_eq!(c.lookup(&k, 9, 3, T, &shared), Lookup::Hit(session("u")));
        assert_eq!(c.lookup(&k, 9, 100, T, &shared), Lookup::Lead);
    }

    #[test]
    fn uncached_answers_reach_waiters_only() {
        let shared = prepared();
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [2u8; 32];
        let rejected = Outcome::Rejected(PipelineError::Unauthorized(None));
        assert_eq!(c.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k, 2, 0, T, &shared), Lookup::Wait);
        assert_eq!(c.complete(&k, rejected.clone(), None, 1, &shared), vec![2]);
        assert_eq!(c.lookup(&k, 2, 1, T, &shared), Lookup::Hit(rejected));
        assert_eq!(c.lookup(&k, 3, 1, T, &shared), Lookup::Lead);
    }

    #[test]
    fn another_worker_reads_the_shared_copy() {
        let shared = prepared();
        let mut a = SessionCache::new(10, 1 << 20);
        let mut b = SessionCache::new(10, 1 << 20);
        let k = [3u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        a.complete(&k, session("w"), Some(50), 0, &shared);
        assert_eq!(b.lookup(&k, 1, 10, T, &shared), Lookup::Hit(session("w")));
        assert_eq!(b.stats.shared_hits, 1);
        let mut other = [3u8; 32];
        other[31] = 9;
        assert_eq!(
            b.lookup(&other, 1, 10, T, &shared),
            Lookup::Lead,
            "same slot, other key"
        );
        assert_eq!(
            SessionCache::new(10, 1 << 20).lookup(&k, 1, 50, T, &shared),
            Lookup::Lead
        );
    }

    #[test]
    fn an_abandoned_flight_wakes_its_waiters() {
        let shared = prepared();
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [4u8; 32];
        assert_eq!(c.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k, 2, 0, T, &shared), Lookup::Wait);
        assert_eq!(c.abandon(&k, &shared), vec![2]);
        assert_eq!(c.lookup(&k, 2, 0, T, &shared), Lookup::Lead);
    }

    /// Counts host calls, and can run something just before the next CAS write (another VM
    /// getting there between this VM's read and its write).
    struct Probe<'a> {
        inner: &'a Shared,
        calls: std::cell::Cell<u32>,
        before_cas: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
    }
    impl<'a> Probe<'a> {
        fn new(inner: &'a Shared) -> Probe<'a> {
            Probe {
                inner,
                calls: std::cell::Cell::new(0),
                before_cas: RefCell::new(None),
            }
        }
    }
    impl SharedData for Probe<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.calls.set(self.calls.get() + 1);
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            self.calls.set(self.calls.get() + 1);
            if cas.is_some() {
                if let Some(f) = self.before_cas.borrow_mut().take() {
                    f();
                }
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn one_vm_leads_and_the_others_take_its_answer() {
        let shared = prepared();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [5u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(b.lookup(&k, 7, 1, T, &shared), Lookup::Wait);
        assert_eq!(b.lookup(&k, 8, 2, T, &shared), Lookup::Wait);
        assert_eq!((b.stats.shared_waits, b.stats.misses), (2, 0));
        assert!(
            b.take_poll_wanted(),
            "the first remote wait asks for fast ticks"
        );
        assert!(!b.take_poll_wanted(), "once");
        assert!(b.polling());
        assert_eq!(b.poll(100, &shared), Vec::<u32>::new(), "still in flight");
        assert_eq!(
            a.complete(&k, session("u"), Some(60_000), 150, &shared),
            Vec::<u32>::new()
        );
        let mut woken = b.poll(160, &shared);
        woken.sort_unstable();
        assert_eq!(woken, vec![7, 8]);
        assert!(!b.polling());
        assert_eq!(b.lookup(&k, 7, 161, T, &shared), Lookup::Hit(session("u")));
        assert_eq!(b.lookup(&k, 8, 161, T, &shared), Lookup::Hit(session("u")));
        assert_eq!(b.lookup(&k, 9, 162, T, &shared), Lookup::Hit(session("u")));
        assert_eq!(b.stats.shared_wait_expiries, 0);
    }

    #[test]
    fn a_wait_on_another_vm_is_bounded_then_the_vm_asks_itself() {
        let shared = prepared();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [6u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(b.lookup(&k, 7, 10, T, &shared), Lookup::Wait);
        assert_eq!(b.poll(SHARED_WAIT_MAX_MS - 1, &shared), Vec::<u32>::new());
        assert_eq!(
            b.poll(SHARED_WAIT_MAX_MS, &shared),
            vec![7],
            "the bound, not the timeout"
        );
        assert_eq!(b.stats.shared_wait_expiries, 1);
        assert_eq!(
            b.lookup(&k, 7, SHARED_WAIT_MAX_MS, T, &shared),
            Lookup::Lead
        );
        assert_eq!(
            b.lookup(&k, 8, SHARED_WAIT_MAX_MS, T, &shared),
            Lookup::Wait,
            "in-VM"
        );
        assert_eq!(b.stats.waits, 1);
        // A shorter call timeout is the bound.
        let k2 = [16u8; 32];
        let mut c = SessionCache::new(10, 1 << 20);
        assert_eq!(a.lookup(&k2, 2, 0, 200, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k2, 7, 0, 200, &shared), Lookup::Wait);
        assert_eq!(c.poll(199, &shared), Vec::<u32>::new());
        assert_eq!(c.poll(200, &shared), vec![7]);
    }

    #[test]
    fn an_expired_wait_found_before_the_tick_leads_with_its_waiters() {
        let shared = prepared();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [7u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(b.lookup(&k, 7, 0, T, &shared), Lookup::Wait);
        assert_eq!(b.lookup(&k, 9, 2_000, T, &shared), Lookup::Lead);
        assert_eq!(b.stats.shared_wait_expiries, 1);
        assert_eq!(
            b.complete(&k, session("x"), Some(60_000), 2_100, &shared),
            vec![7]
        );
        assert_eq!(
            b.lookup(&k, 7, 2_101, T, &shared),
            Lookup::Hit(session("x"))
        );
    }

    #[test]
    fn an_ended_wait_that_finds_a_newer_call_waits_on_it() {
        let shared = prepared();
        let (mut a, mut b) = (cache(), cache());
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [17u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead, "then hangs");
        assert_eq!(b.lookup(&k, 7, 0, T, &shared), Lookup::Wait);
        assert_eq!(
            c.lookup(&k, 3, 1_000, T, &shared),
            Lookup::Lead,
            "a's marker ended"
        );
        assert_eq!(
            b.lookup(&k, 9, 1_001, T, &shared),
            Lookup::Wait,
            "on c's call"
        );
        assert_eq!(b.stats.shared_wait_expiries, 1);
        c.complete(&k, session("n"), Some(60_000), 1_100, &shared);
        let mut woken = b.poll(1_110, &shared);
        woken.sort_unstable();
        assert_eq!(woken, vec![7, 9]);
        assert_eq!(
            b.lookup(&k, 7, 1_111, T, &shared),
            Lookup::Hit(session("n"))
        );
        assert_eq!(b.stats.misses, 0, "b never asked");
    }

    #[test]
    fn a_stale_marker_is_taken_over_without_waiting() {
        let shared = prepared();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [8u8; 32];
        assert_eq!(
            a.lookup(&k, 1, 0, T, &shared),
            Lookup::Lead,
            "then its VM dies"
        );
        assert_eq!(b.lookup(&k, 7, 1_500, T, &shared), Lookup::Lead);
        assert_eq!(b.stats.shared_waits, 0);
        let mut c = SessionCache::new(10, 1 << 20);
        assert_eq!(
            c.lookup(&k, 3, 1_600, T, &shared),
            Lookup::Wait,
            "b's marker holds"
        );
    }

    #[test]
    fn a_rejection_is_not_shared_and_lets_the_waiters_go_at_once() {
        let shared = prepared();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [9u8; 32];
        let rejected = Outcome::Rejected(PipelineError::Unauthorized(None));
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(a.lookup(&k, 2, 0, T, &shared), Lookup::Wait);
        assert_eq!(b.lookup(&k, 7, 0, T, &shared), Lookup::Wait);
        assert_eq!(
            a.complete(&k, rejected.clone(), Some(60_000), 50, &shared),
            vec![2]
        );
        assert_eq!(
            a.lookup(&k, 2, 51, T, &shared),
            Lookup::Hit(rejected.clone())
        );
        assert_eq!(b.poll(60, &shared), vec![7], "the marker is gone");
        assert_eq!(b.stats.shared_wait_expiries, 0);
        assert_eq!(
            b.lookup(&k, 7, 60, T, &shared),
            Lookup::Lead,
            "per VM, as before"
        );
    }

    #[test]
    fn an_abandoned_lead_clears_its_marker() {
        let shared = prepared();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [10u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(b.lookup(&k, 7, 0, T, &shared), Lookup::Wait);
        assert_eq!(a.abandon(&k, &shared), Vec::<u32>::new());
        assert_eq!(b.poll(10, &shared), vec![7]);
        assert_eq!(b.lookup(&k, 7, 10, T, &shared), Lookup::Lead);
    }

    #[test]
    fn of_two_vms_that_miss_at_once_the_cas_lets_one_lead() {
        let shared = prepared();
        let a = RefCell::new(SessionCache::new(10, 1 << 20));
        let mut b = SessionCache::new(10, 1 << 20);
        let k = [11u8; 32];
        let a_led = RefCell::new(None);
        let probe = Probe::new(&shared);
        *probe.before_cas.borrow_mut() = Some(Box::new(|| {
            *a_led.borrow_mut() = Some(a.borrow_mut().lookup(&k, 1, 0, T, &shared));
        }));
        assert_eq!(b.lookup(&k, 7, 0, T, &probe), Lookup::Wait);
        assert_eq!(a_led.take(), Some(Lookup::Lead));
        assert_eq!(b.stats.misses, 0);
    }

    #[test]
    fn a_hit_makes_no_host_call_and_a_miss_one_more() {
        let shared = prepared();
        let probe = Probe::new(&shared);
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [12u8; 32];
        assert_eq!(c.lookup(&k, 1, 0, T, &probe), Lookup::Lead);
        assert_eq!(probe.calls.get(), 2, "the shared read, and the marker");
        c.complete(&k, session("h"), Some(60_000), 1, &probe);
        probe.calls.set(0);
        assert_eq!(c.lookup(&k, 2, 2, T, &probe), Lookup::Hit(session("h")));
        assert_eq!(probe.calls.get(), 0);
    }

    #[test]
    fn without_prepared_slots_a_miss_leads_unmarked() {
        let shared = Shared::default();
        let (mut a, mut b) = (
            SessionCache::new(10, 1 << 20),
            SessionCache::new(10, 1 << 20),
        );
        let k = [13u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, T, &shared), Lookup::Lead);
        assert_eq!(b.lookup(&k, 7, 0, T, &shared), Lookup::Lead);
        assert!(
            shared.get(&slot_key(&k)).is_none(),
            "no write to a missing slot"
        );
    }
}
