//! The jwt handler's moving parts that a scenario table cannot show: JWKS fetched from the
//! root context's tick, shared across workers, refetched for unknown kids (rate-limited),
//! refreshed in the background, backed off on failure; requests waiting for keys; the
//! verified-token cache.

mod common;

use common::mint::{mint, JwtSpec};
use common::scenario::{self, Ending};
use common::world::{forwarded_user, ok, Store, Vm, NOW, ROOT};
use portcullis::cache::jwks::REFETCH_INTERVAL_MS;
use portcullis::vocab::callout::CalloutResult;
use std::rc::Rc;

const AUD: &str = "https://management.azure.com";
const ISS: &str = "https://sts.windows.net/11111111-2222-3333-4444-555555555555/";

fn play3() -> Vec<u8> {
    std::fs::read(scenario::root().join("filter-config/play3.yaml")).unwrap()
}

fn jwks(file: &str) -> Vec<u8> {
    std::fs::read(scenario::root().join("tests/keys").join(file)).unwrap()
}

fn token(key: &str, kid: &str, sub: &str, exp_s: u64) -> String {
    let claims = serde_json::json!({"aud": AUD, "iss": ISS, "sub": sub, "exp": exp_s});
    mint(&JwtSpec {
        alg: "RS256".into(),
        key: Some(key.into()),
        kid: Some(kid.into()),
        claims: claims.as_object().unwrap().clone(),
        tamper: false,
    })
}

fn request(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
        (":path".into(), b"/machines/vm-1".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ]
}

/// The JWKS fetches this VM's root context made, by token.
fn fetches(vm: &Vm) -> Vec<u32> {
    vm.dispatched
        .borrow()
        .iter()
        .filter(|(ctx, _, _)| *ctx == ROOT)
        .map(|(_, t, _)| *t)
        .collect()
}

fn status(vm: &Vm, id: u32) -> Option<u32> {
    match vm.ending(id) {
        Ending::Reply { status, .. } => Some(status),
        _ => None,
    }
}

fn warm(vm: &Vm, file: &str) {
    vm.tick();
    let token = *fetches(vm).last().expect("a fetch");
    vm.answer(token, ok(jwks(file)));
}

const EXP: u64 = NOW / 1000 + 3600;

#[test]
fn before_the_first_keys_requests_wait_and_resume_when_they_arrive() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    assert!(
        fetches(&vm).is_empty(),
        "nothing is fetched from on_configure"
    );
    vm.send(1, request(&token("rsa-1", "rsa-1", "m1", EXP)));
    vm.send(2, request(&token("rsa-1", "rsa-1", "m2", EXP)));
    assert!(matches!(vm.ending(1), Ending::Stuck(_)), "waits for keys");
    vm.tick();
    assert_eq!(fetches(&vm).len(), 1, "one fetch for both requests");
    vm.answer(fetches(&vm)[0], ok(jwks("jwks.json")));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("m1"));
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("m2"));
}

#[test]
fn without_keys_a_request_gets_503_after_jwks_max_wait_and_fetches_back_off() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    vm.send(1, request(&token("rsa-1", "rsa-1", "m", EXP)));
    vm.tick();
    vm.answer(fetches(&vm)[0], CalloutResult::Failed);
    assert!(
        matches!(vm.ending(1), Ending::Stuck(_)),
        "still within jwks_max_wait"
    );
    *vm.now_ms.borrow_mut() = NOW + 500;
    vm.tick();
    assert_eq!(fetches(&vm).len(), 1, "backing off for 1 s after a failure");
    *vm.now_ms.borrow_mut() = NOW + 1_000;
    vm.tick();
    assert_eq!(status(&vm, 1), Some(503), "jwks_max_wait (1 s) is over");
    assert_eq!(fetches(&vm).len(), 2, "the backoff is over too");
    vm.answer(fetches(&vm)[1], ok(b"<html>not a key set</html>".to_vec()));
    *vm.now_ms.borrow_mut() = NOW + 2_500;
    vm.tick();
    assert_eq!(fetches(&vm).len(), 2, "the second failure backs off 2 s");
    *vm.now_ms.borrow_mut() = NOW + 3_000;
    vm.tick();
    assert_eq!(fetches(&vm).len(), 3);
}

#[test]
fn two_workers_fetch_once_and_share_the_keys() {
    let store: Rc<Store> = Rc::default();
    let a = Vm::configured(&play3(), Rc::clone(&store), NOW);
    let b = Vm::configured(&play3(), Rc::clone(&store), NOW);
    a.send(1, request(&token("rsa-1", "rsa-1", "a", EXP)));
    b.send(1, request(&token("rsa-1", "rsa-1", "b", EXP)));
    a.tick();
    b.tick();
    assert_eq!(
        fetches(&a).len() + fetches(&b).len(),
        1,
        "the lease lets one worker fetch"
    );
    a.answer(fetches(&a)[0], ok(jwks("jwks.json")));
    assert_eq!(forwarded_user(&a, 1).as_deref(), Some("a"));
    assert!(
        matches!(b.ending(1), Ending::Stuck(_)),
        "b learns at its next tick"
    );
    b.tick();
    assert_eq!(forwarded_user(&b, 1).as_deref(), Some("b"));
    assert!(fetches(&b).is_empty());
    let mut answered = vec![(0, fetches(&a)[0])];
    for period in 1..=5u64 {
        for step in 0..10 {
            for (i, vm) in [&a, &b].into_iter().enumerate() {
                *vm.now_ms.borrow_mut() = NOW + period * 30_000 + step * 100;
                vm.tick();
                for token in fetches(vm) {
                    if !answered.contains(&(i, token)) {
                        answered.push((i, token));
                        vm.answer(token, ok(jwks("jwks.json")));
                    }
                }
            }
        }
    }
    let total = fetches(&a).len() + fetches(&b).len();
    assert_eq!(
        total, 6,
        "one fetch per jwks_ttl for the whole proxy, made {total}"
    );
}

/// Found in Envoy with two workers: each worker counted its own failures, so a worker whose
/// fetches had failed before kept doubling its backoff (up to 60 s) after another worker's
/// fetch succeeded.
#[test]
fn a_success_on_any_worker_ends_every_workers_backoff() {
    let store: Rc<Store> = Rc::default();
    let a = Vm::configured(&play3(), Rc::clone(&store), NOW);
    let b = Vm::configured(&play3(), Rc::clone(&store), NOW);
    let at = |ms: u64| {
        *a.now_ms.borrow_mut() = NOW + ms;
        *b.now_ms.borrow_mut() = NOW + ms;
    };
    a.tick();
    a.answer(fetches(&a)[0], CalloutResult::Failed);
    at(1_000);
    a.tick();
    a.answer(fetches(&a)[1], CalloutResult::Failed);
    at(3_000);
    b.tick();
    assert_eq!(
        fetches(&b).len(),
        1,
        "b fetches once the shared 2 s backoff is over"
    );
    b.answer(fetches(&b)[0], ok(jwks("jwks.json")));
    at(33_000);
    a.tick();
    assert_eq!(
        fetches(&a).len(),
        3,
        "a adopts b's keys and refreshes after jwks_ttl"
    );
    a.answer(fetches(&a)[2], CalloutResult::Failed);
    at(34_000);
    a.tick();
    b.tick();
    assert_eq!(
        fetches(&a).len() + fetches(&b).len(),
        5,
        "one failure after a success backs off 1 s, not 4 s"
    );
}

#[test]
fn a_new_kid_is_accepted_after_one_refetch() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    warm(&vm, "jwks-rotated.json");
    vm.send(1, request(&token("rsa-1", "rsa-1", "new-key", EXP)));
    assert!(
        matches!(vm.ending(1), Ending::Stuck(_)),
        "waits for the refetch"
    );
    vm.tick();
    assert_eq!(fetches(&vm).len(), 2);
    vm.answer(fetches(&vm)[1], ok(jwks("jwks.json")));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("new-key"));
}

#[test]
fn unknown_kids_refetch_at_most_once_per_interval() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    warm(&vm, "jwks.json");
    vm.send(1, request(&token("rsa-1", "nope-1", "x", EXP)));
    vm.tick();
    vm.answer(fetches(&vm)[1], ok(jwks("jwks.json")));
    assert_eq!(status(&vm, 1), Some(401));
    for id in 2..50 {
        vm.send(
            id,
            request(&token("rsa-1", &format!("nope-{id}"), "x", EXP)),
        );
        vm.tick();
        assert_eq!(status(&vm, id), Some(401), "refused at once, no wait");
    }
    assert_eq!(
        fetches(&vm).len(),
        2,
        "an attacker's random kids cause one refetch"
    );
    *vm.now_ms.borrow_mut() = NOW + REFETCH_INTERVAL_MS;
    vm.send(99, request(&token("rsa-1", "nope-99", "x", EXP)));
    vm.tick();
    assert_eq!(fetches(&vm).len(), 3, "the interval is over");
}

#[test]
fn a_removed_kid_is_refused_after_the_ttl_even_from_the_cache() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    warm(&vm, "jwks.json");
    let t = token("rsa-1", "rsa-1", "old", EXP);
    vm.send(1, request(&t));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("old"));
    *vm.now_ms.borrow_mut() = NOW + 30_000;
    vm.send(2, request(&t));
    assert_eq!(
        forwarded_user(&vm, 2).as_deref(),
        Some("old"),
        "stale keys serve meanwhile"
    );
    vm.tick();
    assert_eq!(
        fetches(&vm).len(),
        2,
        "the ttl started a background refresh"
    );
    vm.answer(fetches(&vm)[1], ok(jwks("jwks-rotated.json")));
    vm.send(3, request(&t));
    vm.tick();
    assert_eq!(fetches(&vm).len(), 3, "an unknown kid gets its one refetch");
    vm.answer(fetches(&vm)[2], ok(jwks("jwks-rotated.json")));
    assert_eq!(status(&vm, 3), Some(401), "rsa-1 left the JWKS");
}

#[test]
fn verified_tokens_are_cached_until_exp_and_bad_signatures_never() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    warm(&vm, "jwks.json");
    let cached = || {
        vm.root
            .borrow()
            .loaded()
            .unwrap()
            .vm
            .borrow()
            .authn
            .tokens
            .len()
    };
    let t = token("rsa-1", "rsa-1", "short", NOW / 1000 + 10);
    vm.send(1, request(&t));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("short"));
    assert_eq!(cached(), 1);
    vm.send(2, request(&t));
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("short"));
    assert_eq!(cached(), 1, "a hit, not a second entry");
    *vm.now_ms.borrow_mut() = NOW + 10_000;
    vm.send(3, request(&t));
    assert_eq!(status(&vm, 3), Some(401), "expired, cached or not");

    let forged = token("rsa-2", "rsa-1", "forged", EXP);
    for id in 4..6 {
        vm.send(id, request(&forged));
        assert_eq!(status(&vm, id), Some(401));
    }
    assert_eq!(cached(), 0, "a bad signature is never cached as valid");
}

#[test]
fn a_token_cached_under_one_rule_is_checked_again_under_another() {
    let vm = Vm::configured(&play3(), Rc::default(), NOW);
    warm(&vm, "jwks.json");
    let claims = serde_json::json!({"aud": AUD, "iss": ISS, "sub": "hs", "scp": ["machines"]});
    let t = mint(&JwtSpec {
        alg: "HS256".into(),
        key: None,
        kid: None,
        claims: claims.as_object().unwrap().clone(),
        tamper: false,
    });
    let mut scoped = request(&t);
    scoped[3].1 = b"/scoped/x".to_vec();
    vm.send(1, scoped);
    assert_eq!(
        forwarded_user(&vm, 1).as_deref(),
        Some("hs"),
        "azure-scoped allows HS256"
    );
    vm.send(2, request(&t));
    assert_eq!(
        status(&vm, 2),
        Some(401),
        "azure-machines allows RS256 only, cached or not"
    );
}
