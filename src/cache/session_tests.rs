//! The session cache's tests: single-flight in one VM and across VMs through shared data.
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
        extra: Arc::new(serde_json::json!({"id": s})),
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

/// Shared data that fails the test when touched: a process-wide cache has no other VM to meet.
struct Untouched;
impl SharedData for Untouched {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        panic!("a process-wide cache read shared data: {key}")
    }
    fn set(&self, key: &str, _: &[u8], _: Option<u32>) -> bool {
        panic!("a process-wide cache wrote shared data: {key}")
    }
}

#[test]
fn a_process_wide_cache_single_flights_every_worker_without_shared_data() {
    use crate::cache::place::{lock, Place};
    let process = Place::process(SessionCache::process_wide(10, 1 << 20));
    // Two workers' places around the one cache; waiter ids are unique in the process.
    let mut a = Place::Process(Arc::clone(&process));
    let mut b = Place::Process(Arc::clone(&process));
    let k = [7u8; 32];
    assert_eq!(a.get().lookup(&k, 1, 0, T, &Untouched), Lookup::Lead);
    assert_eq!(b.get().lookup(&k, 2, 1, T, &Untouched), Lookup::Wait);
    assert_eq!(a.get().lookup(&k, 3, 1, T, &Untouched), Lookup::Wait);
    // Past any shared-data wait bound, still parked: the leader's call has its own timeout.
    assert_eq!(b.get().lookup(&k, 4, 2_000, T, &Untouched), Lookup::Wait);
    let woken = a
        .get()
        .complete(&k, session("u"), Some(10_000), 3_000, &Untouched);
    assert_eq!(woken, vec![2, 3, 4]);
    assert_eq!(
        b.get().lookup(&k, 2, 3_001, T, &Untouched),
        Lookup::Hit(session("u"))
    );
    assert_eq!(
        b.get().lookup(&k, 9, 3_001, T, &Untouched),
        Lookup::Hit(session("u"))
    );
    let stats = lock(&process).stats;
    assert_eq!((stats.misses, stats.hits, stats.waits), (1, 1, 3));
}
