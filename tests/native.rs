//! The native tier: the HTTP-context logic and the core driven with a fake host, no proxy.
//! Every scenario table runs here; so do the cases a table cannot express (several requests
//! racing on one VM, several VMs sharing data).

mod common;

use common::scenario::{self, Ending, SeenCallout};
use common::world::{forwarded_user, ok, Ctx, FakeHost, Store, Vm, NOW};
use portcullis::context::http::{Flow, HttpFilter};
use portcullis::context::root::RootFilter;
use portcullis::vocab::callout::CalloutResult;
use std::cell::RefCell;
use std::rc::Rc;

/// Runs one case. The root context ticks once after the request is sent and once after each
/// callout is answered, which is when its JWKS fetches start (see tests/scenarios/README.md).
fn run_case(table: &scenario::Table, case: &scenario::Case) -> Result<(), String> {
    let vm = Vm::configured(
        &scenario::config_bytes(table),
        Rc::default(),
        case.time.unwrap_or(1_700_000_000) * 1000,
    );
    if let Some(file) = &table.jwks_file {
        vm.warm(&std::fs::read(scenario::root().join(file)).expect("jwks_file"));
    }
    if let Some(p) = &case.request.peer {
        *vm.peer.borrow_mut() = Some(p.clone());
    }
    vm.send_with_body(
        1,
        scenario::request_headers(&case.request),
        case.request.body.clone().map(String::into_bytes),
    );
    vm.tick();
    for (i, spec) in case.callouts.iter().enumerate() {
        let (_, token, callout) = vm
            .dispatched
            .borrow()
            .get(i)
            .cloned()
            .ok_or_else(|| format!("callout {i} was never made"))?;
        let seen = SeenCallout {
            cluster: callout.cluster.clone(),
            headers: callout.headers.clone(),
            timeout_ms: callout.timeout_ms,
            body: callout.body.clone().unwrap_or_default(),
        };
        scenario::check_callout(&spec.expect, &seen).map_err(|e| format!("callout {i}: {e}"))?;
        vm.answer(token, result_of(&spec.respond));
        vm.tick();
    }
    let made = vm.dispatched.borrow().len();
    if made != case.callouts.len() {
        return Err(format!(
            "made {made} callouts, the table scripts {}",
            case.callouts.len()
        ));
    }
    scenario::check_ending(&case.expect, &vm.ending(1))?;
    let state = vm.contexts.borrow()[&1].filter_state.borrow().clone();
    if let Some((k, _)) = state
        .iter()
        .find(|(k, _)| !vm.declared.borrow().contains(k))
    {
        return Err(format!("filter state {k} set but never declared"));
    }
    scenario::check_filter_state(&case.expect, &state)
}

fn result_of(respond: &scenario::Respond) -> CalloutResult {
    if respond.fail {
        CalloutResult::Failed
    } else {
        CalloutResult::Response {
            status: respond.status.unwrap_or(200),
            headers: respond.headers.clone(),
            body: respond.body_bytes(),
        }
    }
}

#[test]
fn scenario_tables() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (path, table) in scenario::tables() {
        let bytes = scenario::config_bytes(&table);
        let name = scenario::display(&path);
        match (&table.config_error, portcullis::filter::load(&bytes)) {
            (Some(want), Err(e)) => {
                ran += 1;
                if !e.to_string().contains(want.as_str()) {
                    failures.push(format!("{name}: error {e:?} lacks {want:?}"));
                }
            }
            (Some(want), Ok(_)) => {
                failures.push(format!("{name}: loaded, expected an error with {want:?}"))
            }
            (None, Err(e)) => failures.push(format!("{name}: config refused: {e}")),
            (None, Ok(_)) => {
                for case in &table.cases {
                    ran += 1;
                    if let Err(e) = run_case(&table, case) {
                        failures.push(format!("{} / {}: {e}", table.name, case.name));
                    }
                }
            }
        }
    }
    assert!(ran > 0, "no scenario ran");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{ran} scenario cases passed");
}

#[test]
fn without_a_configuration_every_request_is_refused() {
    let vm = Vm::new(RootFilter::default(), Rc::default(), 0);
    let ctx = Rc::new(Ctx {
        filter: RefCell::new(HttpFilter::new(None, 1)),
        headers: RefCell::new(vec![(":path".into(), b"/".to_vec())]),
        body: RefCell::default(),
        answer: RefCell::default(),
        replies: RefCell::default(),
        flow: RefCell::default(),
        filter_state: RefCell::default(),
    });
    vm.contexts.borrow_mut().insert(1, Rc::clone(&ctx));
    let flow = ctx
        .filter
        .borrow_mut()
        .on_request_headers(&FakeHost { vm: &vm, id: 1 });
    assert_eq!(flow, Flow::Pause);
    assert_eq!(
        ctx.replies
            .borrow()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        vec![500]
    );
}

// ---- Session cache, single-flight and sharing across VMs (Envoy workers) ----

fn play2() -> Vec<u8> {
    std::fs::read(scenario::root().join("filter-config/play2.yaml")).unwrap()
}

fn cookie_request(cookie: &str, path: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        (":authority".into(), b"echo.example.com".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (
            "cookie".into(),
            format!("ory_kratos_session={cookie}").into_bytes(),
        ),
    ]
}

fn whoami(id: &str, expires_at: &str) -> CalloutResult {
    CalloutResult::Response {
        status: 200,
        headers: vec![(":status".into(), "200".into())],
        body: serde_json::json!({"identity": {"id": id, "traits": {"email": "e"}}, "expires_at": expires_at})
            .to_string()
            .into_bytes(),
    }
}

#[test]
fn a_cached_session_is_not_asked_again_until_its_ttl() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    vm.send(1, cookie_request("c1", "/"));
    vm.answer(1, whoami("u1", "2030-01-01T00:00:00Z"));
    vm.send(2, cookie_request("c1", "/other?x=1"));
    assert_eq!(
        vm.dispatched.borrow().len(),
        1,
        "the second request is a cache hit"
    );
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("u1"));
    *vm.now_ms.borrow_mut() = NOW + 30_000;
    vm.send(3, cookie_request("c1", "/"));
    assert_eq!(vm.dispatched.borrow().len(), 2, "the 30 s ttl has passed");
}

#[test]
fn a_session_expiring_before_the_ttl_is_cached_only_until_it_expires() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    vm.send(1, cookie_request("c1", "/"));
    vm.answer(1, whoami("u1", "2023-11-14T22:13:25Z")); // NOW + 5 s
    *vm.now_ms.borrow_mut() = NOW + 4_999;
    vm.send(2, cookie_request("c1", "/"));
    assert_eq!(vm.dispatched.borrow().len(), 1);
    *vm.now_ms.borrow_mut() = NOW + 5_000;
    vm.send(3, cookie_request("c1", "/"));
    assert_eq!(vm.dispatched.borrow().len(), 2);
}

#[test]
fn concurrent_requests_for_one_session_make_one_call() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    for id in 1..=5 {
        vm.send(id, cookie_request("same", "/"));
    }
    assert_eq!(vm.dispatched.borrow().len(), 1);
    for id in 2..=5 {
        assert!(matches!(vm.ending(id), Ending::Stuck(_)), "{id} waits");
    }
    vm.answer(1, whoami("u9", "2030-01-01T00:00:00Z"));
    for id in 1..=5 {
        assert_eq!(
            forwarded_user(&vm, id).as_deref(),
            Some("u9"),
            "request {id}"
        );
    }
}

#[test]
fn parked_requests_share_a_rejection_that_is_not_cached() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    vm.send(1, cookie_request("bad", "/"));
    vm.send(2, cookie_request("bad", "/"));
    vm.answer(
        1,
        CalloutResult::Response {
            status: 401,
            headers: vec![],
            body: vec![],
        },
    );
    for id in [1, 2] {
        assert!(
            matches!(vm.ending(id), Ending::Reply { status: 401, .. }),
            "{id}"
        );
    }
    vm.send(3, cookie_request("bad", "/"));
    assert_eq!(
        vm.dispatched.borrow().len(),
        2,
        "401 is not cached by default"
    );
}

#[test]
fn when_the_leader_goes_away_a_waiter_asks_instead() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    vm.send(1, cookie_request("c", "/"));
    vm.send(2, cookie_request("c", "/"));
    vm.done(1);
    assert_eq!(
        vm.dispatched.borrow().len(),
        2,
        "the waiter leads a new call"
    );
    let token = vm.dispatched.borrow()[1].1;
    vm.answer(token, whoami("u2", "2030-01-01T00:00:00Z"));
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("u2"));
}

#[test]
fn one_answer_wakes_a_hundred_parked_requests() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    for id in 1..=101 {
        vm.send(id, cookie_request("c", "/"));
    }
    assert_eq!(vm.dispatched.borrow().len(), 1, "one leader, 100 parked");
    assert!(
        forwarded_user(&vm, 101).is_none(),
        "parked until the answer"
    );
    let token = vm.dispatched.borrow()[0].1;
    vm.answer(token, whoami("u1", "2030-01-01T00:00:00Z"));
    assert!(vm.wakes.borrow().is_empty());
    for id in 1..=101 {
        assert_eq!(
            forwarded_user(&vm, id).as_deref(),
            Some("u1"),
            "request {id}"
        );
    }
    assert_eq!(vm.dispatched.borrow().len(), 1, "nobody asked again");
}

#[test]
fn two_workers_share_sessions_through_shared_data() {
    let store: Rc<Store> = Rc::default();
    let worker = |store: &Rc<Store>| Vm::configured(&play2(), Rc::clone(store), NOW);
    let (a, b) = (worker(&store), worker(&store));
    let mut calls = 0;
    for i in 0..1000u32 {
        let vm = if i % 2 == 0 { &a } else { &b };
        let id = i + 1;
        let before = vm.dispatched.borrow().len();
        vm.send(id, cookie_request("one-cookie", "/"));
        if vm.dispatched.borrow().len() > before {
            calls += 1;
            let token = vm.dispatched.borrow().last().unwrap().1;
            vm.answer(token, whoami("shared", "2030-01-01T00:00:00Z"));
        }
        assert_eq!(forwarded_user(vm, id).as_deref(), Some("shared"));
    }
    assert_eq!(
        calls, 1,
        "1000 requests over two workers made {calls} whoami calls"
    );
}

#[test]
fn requests_differing_in_a_credential_never_share_an_entry() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    vm.send(1, cookie_request("alice", "/"));
    vm.answer(1, whoami("alice", "2030-01-01T00:00:00Z"));
    vm.send(2, cookie_request("bob", "/"));
    assert_eq!(
        vm.dispatched.borrow().len(),
        2,
        "another cookie is another session"
    );
    vm.answer(2, whoami("bob", "2030-01-01T00:00:00Z"));
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("bob"));
    let mut extra = cookie_request("alice", "/");
    extra.push(("cookie".into(), b"theme=dark".to_vec()));
    vm.send(3, extra);
    assert_eq!(
        vm.dispatched.borrow().len(),
        3,
        "any forwarded cookie byte changes the key"
    );
}

#[test]
fn negative_caching_is_opt_in() {
    let config = r#"{
      "access_rules": {"rules": [{"id": "r", "match": {"url": "http://echo.example.com/<.*>", "methods": ["GET"]},
        "authenticators": [{"handler": "cookie_session"}], "authorizer": {"handler": "allow"}, "mutators": [{"handler": "noop"}]}]},
      "authenticators": {"cookie_session": {"enabled": true, "config": {
        "check_session_url": "http://kratos-public.auth/sessions/whoami", "preserve_path": true,
        "cache": {"negative_ttl": "10s"}}}},
      "authorizers": {"allow": {"enabled": true}}, "mutators": {"noop": {"enabled": true}},
      "clusters": {"http://kratos-public.auth": "kratos"}}"#;
    let vm = Vm::configured(config.as_bytes(), Rc::default(), NOW);
    vm.send(1, cookie_request("bad", "/"));
    vm.answer(
        1,
        CalloutResult::Response {
            status: 401,
            headers: vec![],
            body: vec![],
        },
    );
    vm.send(2, cookie_request("bad", "/"));
    assert_eq!(vm.dispatched.borrow().len(), 1);
    assert!(matches!(vm.ending(2), Ending::Reply { status: 401, .. }));
}

#[test]
fn trace_headers_reach_the_callout_but_not_the_cache_key() {
    let vm = Vm::configured(&play2(), Rc::default(), NOW);
    let mut first = cookie_request("traced", "/");
    first.push(("x-request-id".into(), b"req-1".to_vec()));
    vm.send(1, first);
    let callout = vm.dispatched.borrow()[0].2.clone();
    assert!(callout
        .headers
        .contains(&("x-request-id".to_string(), "req-1".to_string())));
    vm.answer(1, whoami("t", "2030-01-01T00:00:00Z"));
    let mut second = cookie_request("traced", "/");
    second.push(("x-request-id".into(), b"req-2".to_vec()));
    vm.send(2, second);
    assert_eq!(
        vm.dispatched.borrow().len(),
        1,
        "a new request id is the same session"
    );
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("t"));
}

#[test]
fn decisions_and_outcomes_are_published_as_stats_on_the_tick() {
    let play1 = std::fs::read(scenario::root().join("filter-config/play1.yaml")).unwrap();
    let vm = Vm::configured(&play1, Rc::default(), NOW);
    let request = |path: &str, host: &str| {
        vec![
            (":method".to_string(), b"GET".to_vec()),
            (":scheme".to_string(), b"http".to_vec()),
            (":authority".to_string(), host.as_bytes().to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
        ]
    };
    vm.send(1, request("/a", "echo.example.com"));
    vm.send(2, request("/b", "echo.example.com"));
    vm.send(3, request("/", "nothing.example.com"));
    let stat = |name: &str| {
        vm.metrics
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    };
    assert_eq!(stat("result=.=loaded;.;portcullis_config_total"), Some(1));
    assert_eq!(
        stat("rule=.=echo-anonymous;.;decision=.=allow;.;status=.=upstream;.;portcullis_requests_total"),
        None,
        "published on the tick, not on the request path"
    );
    vm.tick();
    assert_eq!(
        stat("rule=.=echo-anonymous;.;decision=.=allow;.;status=.=upstream;.;portcullis_requests_total"),
        Some(2)
    );
    assert_eq!(
        stat("rule=.=none;.;decision=.=deny;.;status=.=404;.;portcullis_requests_total"),
        Some(1)
    );
    assert_eq!(
        stat("handler=.=anonymous;.;outcome=.=responsible;.;portcullis_authenticator_total"),
        Some(2)
    );
    vm.send(4, request("/c", "echo.example.com"));
    vm.tick();
    vm.tick();
    assert_eq!(
        stat("rule=.=echo-anonymous;.;decision=.=allow;.;status=.=upstream;.;portcullis_requests_total"),
        Some(3),
        "each tick publishes only the growth"
    );
}

#[test]
fn a_refused_configuration_is_counted() {
    let vm = Vm::new(RootFilter::default(), Rc::default(), NOW);
    let ok = vm
        .root
        .borrow_mut()
        .configure(b"access_rules: [ {", &FakeHost { vm: &vm, id: 0 });
    assert!(!ok);
    let rejected = vm
        .metrics
        .borrow()
        .iter()
        .find(|(n, _)| n == "result=.=rejected;.;portcullis_config_total")
        .map(|(_, v)| *v);
    assert_eq!(rejected, Some(1));
}

#[test]
fn the_hydrator_sends_the_session_as_oathkeeper_serialises_it_and_caches_answers() {
    let config = r#"{
      "access_rules": {"rules": [{"id": "h", "match": {"url": "http://h.example.com/<.*>", "methods": ["GET"]},
        "authenticators": [{"handler": "anonymous"}], "authorizer": {"handler": "allow"},
        "mutators": [{"handler": "hydrator"}]}]},
      "authenticators": {"anonymous": {"enabled": true, "config": {"subject": "guest"}}},
      "authorizers": {"allow": {"enabled": true}},
      "mutators": {"hydrator": {"enabled": true, "config": {"api": {"url": "http://hydrator.auth/h"}, "cache": {"enabled": true, "ttl": "10s"}}}},
      "clusters": {"http://hydrator.auth": "hydrator"}}"#;
    let vm = Vm::configured(config.as_bytes(), Rc::default(), NOW);
    let request = || {
        vec![
            (":method".to_string(), b"GET".to_vec()),
            (":scheme".to_string(), b"http".to_vec()),
            (":authority".to_string(), b"h.example.com".to_vec()),
            (":path".to_string(), b"/a/b?q=1".to_vec()),
            ("x-trace".to_string(), b"t".to_vec()),
        ]
    };
    vm.send(1, request());
    let body: serde_json::Value =
        serde_json::from_slice(vm.dispatched.borrow()[0].2.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "subject": "guest", "extra": {}, "header": {},
            "match_context": {
                "regexp_capture_groups": ["a/b"],
                "url": {"Scheme": "http", "Opaque": "", "User": null, "Host": "h.example.com",
                        "Path": "/a/b", "RawPath": "", "ForceQuery": false, "RawQuery": "q=1",
                        "Fragment": "", "RawFragment": ""},
                "method": "GET",
                "header": {"X-Trace": ["t"]}
            }
        })
    );
    vm.answer(
        1,
        ok(br#"{"subject":"guest","extra":{"k":"v"},"header":{"X-A":["1"]}}"#.to_vec()),
    );
    assert!(matches!(vm.ending(1), Ending::Forward(_)));
    vm.send(2, request());
    assert_eq!(
        vm.dispatched.borrow().len(),
        1,
        "the same session is answered from the cache"
    );
    assert!(matches!(vm.ending(2), Ending::Forward(_)));
}
