//! The session cache Oathkeeper lacks: whoami answers keyed by a BLAKE2b-256 digest of everything that
//! changes them, bounded and LRU-evicted per VM, shared across workers through proxy shared
//! data, with single-flight so concurrent requests for one session make one call.

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
    /// Another request is asking the session store; this one is parked until it answers.
    Wait,
    /// Nobody is asking: this request makes the call.
    Lead,
}

enum Flight {
    Pending {
        waiters: Vec<u32>,
        since_ms: u64,
    },
    Done {
        outcome: Outcome,
        waiters: Vec<u32>,
        at_ms: u64,
    },
}

/// Shared-data slots: the key space is bounded because the host never evicts shared data.
const SLOTS: u32 = 4096;
/// A parked waiter whose leader has not answered after this long leads itself.
const STALE_FLIGHT_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub shared_hits: u64,
    pub misses: u64,
    pub waits: u64,
}

pub struct SessionCache {
    lru: Lru<Key, Outcome>,
    flights: HashMap<Key, Flight>,
    pub stats: Stats,
}

impl SessionCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> SessionCache {
        SessionCache {
            lru: Lru::new(max_entries, max_bytes),
            flights: HashMap::new(),
            stats: Stats::default(),
        }
    }

    pub fn evictions(&self) -> u64 {
        self.lru.evictions()
    }

    pub fn lookup(
        &mut self,
        key: &Key,
        waiter: u32,
        now_ms: u64,
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
        if let Some((outcome, expires_ms)) = read_shared(shared, key, now_ms) {
            self.stats.shared_hits += 1;
            self.lru.insert(*key, outcome.clone(), expires_ms);
            return Lookup::Hit(outcome);
        }
        match self.flights.get_mut(key) {
            Some(Flight::Pending { waiters, since_ms }) if now_ms < *since_ms + STALE_FLIGHT_MS => {
                if !waiters.contains(&waiter) {
                    waiters.push(waiter);
                }
                self.stats.waits += 1;
                Lookup::Wait
            }
            _ => {
                self.sweep(now_ms);
                self.stats.misses += 1;
                self.flights.insert(
                    *key,
                    Flight::Pending {
                        waiters: Vec::new(),
                        since_ms: now_ms,
                    },
                );
                Lookup::Lead
            }
        }
    }

    /// Records the leader's answer: cached until `cache_until` when given, shared with other
    /// workers when it is a session, and handed to the parked waiters, whose ids are returned
    /// so the proxy can wake them.
    pub fn complete(
        &mut self,
        key: &Key,
        outcome: Outcome,
        cache_until: Option<u64>,
        now_ms: u64,
        shared: &dyn SharedData,
    ) -> Vec<u32> {
        if let Some(until) = cache_until.filter(|u| *u > now_ms) {
            if matches!(outcome, Outcome::Session { .. }) {
                write_shared(shared, key, &outcome, until);
            }
            self.lru.insert(*key, outcome.clone(), until);
        }
        let waiters = match self.flights.remove(key) {
            Some(Flight::Pending { waiters, .. }) => waiters,
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

    /// The leader went away without an answer: its waiters are woken and one of them leads.
    pub fn abandon(&mut self, key: &Key) -> Vec<u32> {
        match self.flights.remove(key) {
            Some(Flight::Pending { waiters, .. }) => waiters,
            Some(done) => {
                self.flights.insert(*key, done);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Drops answers that waiters which went away never collected.
    fn sweep(&mut self, now_ms: u64) {
        self.flights.retain(|_, f| match f {
            Flight::Done { at_ms, .. } => now_ms < *at_ms + STALE_FLIGHT_MS,
            Flight::Pending { since_ms, .. } => now_ms < *since_ms + STALE_FLIGHT_MS,
        });
    }
}

fn slot_key(key: &Key) -> String {
    let slot = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) % SLOTS;
    format!("portcullis.session.{slot}")
}

/// Value: key (32) | expires_ms (8, LE) | subject length (4, LE) | subject | extra JSON.
fn write_shared(shared: &dyn SharedData, key: &Key, outcome: &Outcome, expires_ms: u64) {
    let Outcome::Session { subject, extra } = outcome else {
        return;
    };
    let extra = extra.to_string();
    let Ok(subject_len) = u32::try_from(subject.len()) else {
        return;
    };
    let mut value = Vec::with_capacity(44 + subject.len() + extra.len());
    value.extend_from_slice(key);
    value.extend_from_slice(&expires_ms.to_le_bytes());
    value.extend_from_slice(&subject_len.to_le_bytes());
    value.extend_from_slice(subject.as_bytes());
    value.extend_from_slice(extra.as_bytes());
    // Last writer wins: a lost write only costs another worker a miss.
    shared.set(&slot_key(key), &value, None);
}

fn read_shared(shared: &dyn SharedData, key: &Key, now_ms: u64) -> Option<(Outcome, u64)> {
    let (value, _) = shared.get(&slot_key(key))?;
    if value.get(..32)? != key.as_slice() {
        return None;
    }
    let expires_ms = u64::from_le_bytes(value.get(32..40)?.try_into().ok()?);
    if expires_ms <= now_ms {
        return None;
    }
    let subject_len = u32::from_le_bytes(value.get(40..44)?.try_into().ok()?) as usize;
    let subject = std::str::from_utf8(value.get(44..44 + subject_len)?).ok()?;
    let extra: serde_json::Value = serde_json::from_slice(value.get(44 + subject_len..)?).ok()?;
    Some((
        Outcome::Session {
            subject: subject.to_string(),
            extra: Rc::new(extra),
        },
        expires_ms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap as Map;

    #[derive(Default)]
    struct Shared(RefCell<Map<String, Vec<u8>>>);
    impl SharedData for Shared {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.0.borrow().get(key).map(|v| (v.clone(), 1))
        }
        fn set(&self, key: &str, value: &[u8], _: Option<u32>) -> bool {
            self.0.borrow_mut().insert(key.to_string(), value.to_vec());
            true
        }
    }

    fn session(s: &str) -> Outcome {
        Outcome::Session {
            subject: s.into(),
            extra: Rc::new(serde_json::json!({"id": s})),
        }
    }

    #[test]
    fn single_flight_then_cache() {
        let shared = Shared::default();
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [1u8; 32];
        assert_eq!(c.lookup(&k, 1, 0, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k, 2, 1, &shared), Lookup::Wait);
        assert_eq!(c.lookup(&k, 3, 1, &shared), Lookup::Wait);
        let woken = c.complete(&k, session("u"), Some(100), 2, &shared);
        assert_eq!(woken, vec![2, 3]);
        assert_eq!(c.lookup(&k, 2, 3, &shared), Lookup::Hit(session("u")));
        assert_eq!(c.lookup(&k, 9, 3, &shared), Lookup::Hit(session("u")));
        assert_eq!(c.lookup(&k, 9, 100, &shared), Lookup::Lead);
    }

    #[test]
    fn uncached_answers_reach_waiters_only() {
        let shared = Shared::default();
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [2u8; 32];
        let rejected = Outcome::Rejected(PipelineError::Unauthorized(None));
        assert_eq!(c.lookup(&k, 1, 0, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k, 2, 0, &shared), Lookup::Wait);
        assert_eq!(c.complete(&k, rejected.clone(), None, 1, &shared), vec![2]);
        assert_eq!(c.lookup(&k, 2, 1, &shared), Lookup::Hit(rejected));
        assert_eq!(c.lookup(&k, 3, 1, &shared), Lookup::Lead);
    }

    #[test]
    fn another_worker_reads_the_shared_copy() {
        let shared = Shared::default();
        let mut a = SessionCache::new(10, 1 << 20);
        let mut b = SessionCache::new(10, 1 << 20);
        let k = [3u8; 32];
        assert_eq!(a.lookup(&k, 1, 0, &shared), Lookup::Lead);
        a.complete(&k, session("w"), Some(50), 0, &shared);
        assert_eq!(b.lookup(&k, 1, 10, &shared), Lookup::Hit(session("w")));
        assert_eq!(b.stats.shared_hits, 1);
        let mut other = [3u8; 32];
        other[31] = 9;
        assert_eq!(
            b.lookup(&other, 1, 10, &shared),
            Lookup::Lead,
            "same slot, other key"
        );
        assert_eq!(
            SessionCache::new(10, 1 << 20).lookup(&k, 1, 50, &shared),
            Lookup::Lead
        );
    }

    #[test]
    fn an_abandoned_flight_wakes_its_waiters() {
        let shared = Shared::default();
        let mut c = SessionCache::new(10, 1 << 20);
        let k = [4u8; 32];
        assert_eq!(c.lookup(&k, 1, 0, &shared), Lookup::Lead);
        assert_eq!(c.lookup(&k, 2, 0, &shared), Lookup::Wait);
        assert_eq!(c.abandon(&k), vec![2]);
        assert_eq!(c.lookup(&k, 2, 0, &shared), Lookup::Lead);
    }
}
