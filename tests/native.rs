//! The native tier: the HTTP-context logic and the core driven with a fake host, no proxy.
//! Every scenario table runs here; so do the cases a table cannot express (several requests
//! racing on one VM, several VMs sharing data).

mod common;

use common::scenario::{self, Ending, SeenCallout};
use portcullis::cache::SharedData;
use portcullis::pipeline::callout::{Callout, CalloutResult};
use portcullis::pipeline::effect::Reply;
use portcullis::pipeline::LogLevel;
use portcullis::proxy::host::Host;
use portcullis::proxy::http::{Flow, HttpFilter, Loaded};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Proxy shared data with Envoy's CAS semantics: one store for all VMs of a test.
#[derive(Default)]
struct Store(RefCell<HashMap<String, (Vec<u8>, u32)>>);

/// One VM: its configuration and its live contexts.
struct Vm {
    loaded: Loaded,
    store: Rc<Store>,
    contexts: RefCell<HashMap<u32, Rc<Ctx>>>,
    next_token: RefCell<u32>,
    /// Every callout any context dispatched, in order: (context, token, callout).
    dispatched: RefCell<Vec<(u32, u32, Callout)>>,
    now_ms: RefCell<u64>,
}

/// One HTTP context and what happened to its request.
struct Ctx {
    filter: RefCell<HttpFilter>,
    headers: RefCell<Vec<(String, Vec<u8>)>>,
    answer: RefCell<Option<CalloutResult>>,
    replies: RefCell<Vec<Reply>>,
    flow: RefCell<Option<Flow>>,
}

struct FakeHost<'a> {
    vm: &'a Vm,
    id: u32,
}

impl FakeHost<'_> {
    fn ctx(&self) -> Rc<Ctx> {
        Rc::clone(&self.vm.contexts.borrow()[&self.id])
    }
}

impl SharedData for FakeHost<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.vm.store.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut store = self.vm.store.0.borrow_mut();
        let current = store.get(key).map_or(0, |(_, c)| *c);
        if cas.is_some_and(|c| c != current) {
            return false;
        }
        store.insert(key.to_string(), (value.to_vec(), current + 1));
        true
    }
}

impl Host for FakeHost<'_> {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.ctx().headers.borrow().clone()
    }
    fn set_request_header(&self, name: &str, value: &str) {
        let ctx = self.ctx();
        let mut h = ctx.headers.borrow_mut();
        h.retain(|(k, _)| k != name);
        h.push((name.to_string(), value.as_bytes().to_vec()));
    }
    fn remove_request_header(&self, name: &str) {
        self.ctx().headers.borrow_mut().retain(|(k, _)| k != name);
    }
    fn dispatch(&self, callout: &Callout) -> Option<u32> {
        let mut t = self.vm.next_token.borrow_mut();
        *t += 1;
        self.vm
            .dispatched
            .borrow_mut()
            .push((self.id, *t, callout.clone()));
        Some(*t)
    }
    fn callout_result(&self, _: usize, _: usize) -> CalloutResult {
        self.ctx()
            .answer
            .borrow_mut()
            .take()
            .unwrap_or(CalloutResult::Failed)
    }
    fn send_reply(&self, reply: &Reply) {
        self.ctx().replies.borrow_mut().push(reply.clone());
    }
    fn resume_request(&self) {
        *self.ctx().flow.borrow_mut() = Some(Flow::Continue);
    }
    fn now_ms(&self) -> u64 {
        *self.vm.now_ms.borrow()
    }
    fn wake(&self, id: u32) {
        let Some(ctx) = self.vm.contexts.borrow().get(&id).cloned() else {
            return;
        };
        ctx.filter
            .borrow_mut()
            .on_wake(&FakeHost { vm: self.vm, id });
    }
    fn log(&self, _: LogLevel, _: &str) {}
}

impl Vm {
    fn new(loaded: Loaded, store: Rc<Store>, now_ms: u64) -> Vm {
        Vm {
            loaded,
            store,
            contexts: RefCell::default(),
            next_token: RefCell::new(0),
            dispatched: RefCell::default(),
            now_ms: RefCell::new(now_ms),
        }
    }

    /// Starts a request in a new context.
    fn send(&self, id: u32, headers: Vec<(String, Vec<u8>)>) {
        let ctx = Rc::new(Ctx {
            filter: RefCell::new(HttpFilter::new(Some(&self.loaded), id)),
            headers: RefCell::new(headers),
            answer: RefCell::default(),
            replies: RefCell::default(),
            flow: RefCell::default(),
        });
        self.contexts.borrow_mut().insert(id, Rc::clone(&ctx));
        let flow = ctx
            .filter
            .borrow_mut()
            .on_request_headers(&FakeHost { vm: self, id });
        *ctx.flow.borrow_mut() = Some(flow);
    }

    /// Answers the callout with this token.
    fn answer(&self, token: u32, result: CalloutResult) {
        let id = self
            .dispatched
            .borrow()
            .iter()
            .find(|(_, t, _)| *t == token)
            .map(|(id, _, _)| *id)
            .expect("token");
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        *ctx.answer.borrow_mut() = Some(result);
        ctx.filter
            .borrow_mut()
            .on_callout_response(&FakeHost { vm: self, id }, token, 1, 0);
    }

    fn done(&self, id: u32) {
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        ctx.filter.borrow_mut().on_done(&FakeHost { vm: self, id });
        self.contexts.borrow_mut().remove(&id);
    }

    fn ending(&self, id: u32) -> Ending {
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        let replies = ctx.replies.borrow();
        if replies.len() > 1 {
            return Ending::Stuck(format!("{} local replies", replies.len()));
        }
        let flow = *ctx.flow.borrow();
        let ending = match (replies.first(), flow) {
            (Some(r), _) => Ending::Reply {
                status: r.status,
                headers: r.headers.clone(),
                body: r.body.clone().into_bytes(),
            },
            (None, Some(Flow::Continue)) => Ending::Forward(ctx.headers.borrow().clone()),
            _ => Ending::Stuck("paused with no reply".into()),
        };
        ending
    }
}

fn run_case(loaded: Loaded, case: &scenario::Case) -> Result<(), String> {
    let vm = Vm::new(
        loaded,
        Rc::default(),
        case.time.unwrap_or(1_700_000_000) * 1000,
    );
    vm.send(1, scenario::request_headers(&case.request));
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
        };
        scenario::check_callout(&spec.expect, &seen).map_err(|e| format!("callout {i}: {e}"))?;
        vm.answer(token, result_of(&spec.respond));
    }
    let made = vm.dispatched.borrow().len();
    if made != case.callouts.len() {
        return Err(format!(
            "made {made} callouts, the table scripts {}",
            case.callouts.len()
        ));
    }
    scenario::check_ending(&case.expect, &vm.ending(1))
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
        match (&table.config_error, portcullis::config::load(&bytes)) {
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
            (None, Ok(filter)) => {
                let filter = Rc::new(filter);
                for case in &table.cases {
                    ran += 1;
                    let loaded = Loaded {
                        vm: Rc::new(RefCell::new(filter.new_state())),
                        filter: Rc::clone(&filter),
                    };
                    if let Err(e) = run_case(loaded, case) {
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
    let vm = Vm::new(
        Loaded::new(portcullis::config::load(b"{}").unwrap()),
        Rc::default(),
        0,
    );
    let ctx = Rc::new(Ctx {
        filter: RefCell::new(HttpFilter::new(None, 1)),
        headers: RefCell::new(vec![(":path".into(), b"/".to_vec())]),
        answer: RefCell::default(),
        replies: RefCell::default(),
        flow: RefCell::default(),
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

fn play2() -> portcullis::pipeline::Filter {
    let text = std::fs::read(scenario::root().join("filter-config/play2.yaml")).unwrap();
    portcullis::config::load(&text).unwrap()
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

fn forwarded_user(vm: &Vm, id: u32) -> Option<String> {
    match vm.ending(id) {
        Ending::Forward(h) => h
            .iter()
            .find(|(k, _)| k == "x-user-id")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        _ => None,
    }
}

const NOW: u64 = 1_700_000_000_000;

#[test]
fn a_cached_session_is_not_asked_again_until_its_ttl() {
    let vm = Vm::new(Loaded::new(play2()), Rc::default(), NOW);
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
    let vm = Vm::new(Loaded::new(play2()), Rc::default(), NOW);
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
    let vm = Vm::new(Loaded::new(play2()), Rc::default(), NOW);
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
    let vm = Vm::new(Loaded::new(play2()), Rc::default(), NOW);
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
    let vm = Vm::new(Loaded::new(play2()), Rc::default(), NOW);
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
fn two_workers_share_sessions_through_shared_data() {
    let store: Rc<Store> = Rc::default();
    let filter = Rc::new(play2());
    let worker = |store: &Rc<Store>| {
        let loaded = Loaded {
            vm: Rc::new(RefCell::new(filter.new_state())),
            filter: Rc::clone(&filter),
        };
        Vm::new(loaded, Rc::clone(store), NOW)
    };
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
    let vm = Vm::new(Loaded::new(play2()), Rc::default(), NOW);
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
    let vm = Vm::new(
        Loaded::new(portcullis::config::load(config.as_bytes()).unwrap()),
        Rc::default(),
        NOW,
    );
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
