//! A fake proxy for the native tiers: VMs (Envoy workers) with a root context and HTTP
//! contexts, callouts recorded and answered by the test, shared data with Envoy's CAS
//! semantics, and a clock the test moves.

use super::scenario::Ending;
use portcullis::cache::SharedData;
use portcullis::context::host::{Host, MetricKind};
use portcullis::context::http::{Flow, HttpFilter};
use portcullis::context::metrics::EncodedStats;
use portcullis::context::root::RootFilter;
use portcullis::jose::crypto::{Backend, ProbeError};
use portcullis::vocab::callout::{Callout, CalloutResult};
use portcullis::vocab::effect::Reply;
use portcullis::vocab::log::LogLevel;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Proxy shared data with Envoy's CAS semantics: one store for all VMs of a test.
#[derive(Default)]
pub struct Store(RefCell<HashMap<String, (Vec<u8>, u32)>>);

/// The root context's id in the fake host; HTTP contexts use ids from 1.
pub const ROOT: u32 = 0;

/// One VM: its root context (configuration, JWKS fetches) and its live HTTP contexts.
pub struct Vm {
    pub root: RefCell<RootFilter>,
    /// The answer the root context is reading.
    pub root_answer: RefCell<Option<CalloutResult>>,
    pub store: Rc<Store>,
    pub contexts: RefCell<HashMap<u32, Rc<Ctx>>>,
    pub next_token: RefCell<u32>,
    /// Every callout any context dispatched, in order: (context, token, callout).
    pub dispatched: RefCell<Vec<(u32, u32, Callout)>>,
    pub now_ms: RefCell<u64>,
    /// Stats by full name (tags encoded as proxy-wasm's binding does): counters summed, gauges
    /// and histograms their last value.
    pub metrics: RefCell<Vec<(String, i64)>>,
    pub families: EncodedStats,
    /// The downstream peer every request comes from.
    pub peer: RefCell<Option<String>>,
    /// Wakes queued by the callback in progress, run when it has returned (as the adapter does).
    pub wakes: RefCell<VecDeque<u32>>,
    /// Filter state keys the root context declared as strings.
    pub declared: RefCell<Vec<String>>,
}

/// One HTTP context and what happened to its request.
pub struct Ctx {
    pub filter: RefCell<HttpFilter>,
    pub headers: RefCell<Vec<(String, Vec<u8>)>>,
    pub body: RefCell<Vec<u8>>,
    pub answer: RefCell<Option<CalloutResult>>,
    pub replies: RefCell<Vec<Reply>>,
    pub flow: RefCell<Option<Flow>>,
    /// Filter state keys set (without `wasm.portcullis.`), last value each.
    pub filter_state: RefCell<Vec<(String, String)>>,
}

pub struct FakeHost<'a> {
    pub vm: &'a Vm,
    pub id: u32,
}

impl FakeHost<'_> {
    pub fn ctx(&self) -> Rc<Ctx> {
        Rc::clone(&self.vm.contexts.borrow()[&self.id])
    }

    /// The index in `Vm::metrics` of family `id`'s stat for `values`.
    fn stat(&self, id: u32, values: &[&str]) -> Option<usize> {
        let index = self.vm.families.series(id, values, |_, name| {
            let mut m = self.vm.metrics.borrow_mut();
            m.push((name.to_string(), 0));
            Some(m.len() as u32 - 1)
        })?;
        Some(index as usize)
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
    fn source_address(&self) -> Option<String> {
        self.vm.peer.borrow().clone()
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        let body = self.ctx().body.borrow().clone();
        body.into_iter().take(size).collect()
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
        let answer = if self.id == ROOT {
            self.vm.root_answer.borrow_mut().take()
        } else {
            self.ctx().answer.borrow_mut().take()
        };
        answer.unwrap_or(CalloutResult::Failed)
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
        self.vm.wakes.borrow_mut().push_back(id);
    }
    fn set_tick_period(&self, _: u64) {}
    fn log(&self, _: LogLevel, _: &str) {}
    fn declare_filter_state(&self, key: &str) {
        assert_eq!(
            self.id, ROOT,
            "declared from an HTTP context: Envoy would ignore it"
        );
        self.vm.declared.borrow_mut().push(key.to_string());
    }
    fn set_filter_state(&self, key: &str, value: &str) {
        let ctx = self.ctx();
        let mut state = ctx.filter_state.borrow_mut();
        state.retain(|(k, _)| k != key);
        state.push((key.to_string(), value.to_string()));
    }
    fn define_metric(&self, kind: MetricKind, name: &str, tags: &[&str]) -> Option<u32> {
        Some(self.vm.families.define(kind, name, tags))
    }
    fn increment_metric(&self, id: u32, values: &[&str], by: u64) {
        if let Some(i) = self.stat(id, values) {
            self.vm.metrics.borrow_mut()[i].1 += by as i64;
        }
    }
    fn record_metric(&self, id: u32, values: &[&str], value: u64) {
        if let Some(i) = self.stat(id, values) {
            self.vm.metrics.borrow_mut()[i].1 = value as i64;
        }
    }

    fn crypto(&self) -> (Backend, Option<ProbeError>) {
        (Backend::rust(), None)
    }
}

impl Vm {
    /// A VM configured as Envoy configures each worker: from the configuration bytes.
    pub fn configured(config: &[u8], store: Rc<Store>, now_ms: u64) -> Vm {
        let vm = Vm::new(RootFilter::default(), store, now_ms);
        let ok = vm
            .root
            .borrow_mut()
            .configure(config, &FakeHost { vm: &vm, id: ROOT });
        assert!(ok, "configuration refused");
        vm
    }

    pub fn new(root: RootFilter, store: Rc<Store>, now_ms: u64) -> Vm {
        Vm {
            root: RefCell::new(root),
            root_answer: RefCell::default(),
            store,
            contexts: RefCell::default(),
            next_token: RefCell::new(0),
            dispatched: RefCell::default(),
            now_ms: RefCell::new(now_ms),
            metrics: RefCell::default(),
            families: EncodedStats::default(),
            peer: RefCell::new(Some(DEFAULT_PEER.to_string())),
            wakes: RefCell::default(),
            declared: RefCell::default(),
        }
    }

    /// Runs the queued wakes after a callback, each in its own context. A woken context whose
    /// filter is still borrowed panics here: the pipeline must never be re-entered.
    fn run_wakes(&self) {
        for _ in 0..100_000 {
            let Some(id) = self.wakes.borrow_mut().pop_front() else {
                return;
            };
            let Some(ctx) = self.contexts.borrow().get(&id).cloned() else {
                continue;
            };
            ctx.filter.borrow_mut().on_wake(&FakeHost { vm: self, id });
        }
        panic!("wakes did not settle");
    }

    /// Starts a request in a new context.
    pub fn send(&self, id: u32, headers: Vec<(String, Vec<u8>)>) {
        self.send_with_body(id, headers, None)
    }

    /// As `send`; a body arrives whole right after the headers, as Envoy delivers it under
    /// `allow_on_headers_stop_iteration`.
    pub fn send_with_body(&self, id: u32, headers: Vec<(String, Vec<u8>)>, body: Option<Vec<u8>>) {
        let ctx = Rc::new(Ctx {
            filter: RefCell::new(HttpFilter::new(self.root.borrow().loaded(), id)),
            headers: RefCell::new(headers),
            body: RefCell::new(body.clone().unwrap_or_default()),
            answer: RefCell::default(),
            replies: RefCell::default(),
            flow: RefCell::default(),
            filter_state: RefCell::default(),
        });
        self.contexts.borrow_mut().insert(id, Rc::clone(&ctx));
        let host = FakeHost { vm: self, id };
        if body.is_some() {
            ctx.filter.borrow_mut().body_follows();
        }
        let mut flow = ctx.filter.borrow_mut().on_request_headers(&host);
        if let (Some(b), Flow::Pause) = (&body, flow) {
            flow = ctx
                .filter
                .borrow_mut()
                .on_request_body(&host, b.len(), true);
        }
        *ctx.flow.borrow_mut() = Some(flow);
        self.run_wakes();
    }

    /// Answers the callout with this token.
    pub fn answer(&self, token: u32, result: CalloutResult) {
        let id = self
            .dispatched
            .borrow()
            .iter()
            .find(|(_, t, _)| *t == token)
            .map(|(id, _, _)| *id)
            .expect("token");
        if id == ROOT {
            *self.root_answer.borrow_mut() = Some(result);
            self.root
                .borrow_mut()
                .on_callout_response(&FakeHost { vm: self, id }, token, 1, 0);
            self.run_wakes();
            return;
        }
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        *ctx.answer.borrow_mut() = Some(result);
        ctx.filter
            .borrow_mut()
            .on_callout_response(&FakeHost { vm: self, id }, token, 1, 0);
        self.run_wakes();
    }

    /// Ticks once and answers the JWKS fetches that starts with `jwks`; forgets those calls.
    pub fn warm(&self, jwks: &[u8]) {
        self.tick();
        let fetches: Vec<u32> = self
            .dispatched
            .borrow()
            .iter()
            .map(|(_, t, _)| *t)
            .collect();
        for token in fetches {
            self.answer(token, ok(jwks.to_vec()));
        }
        self.dispatched.borrow_mut().clear();
    }

    /// The root context's timer fires.
    pub fn tick(&self) {
        self.root
            .borrow_mut()
            .on_tick(&FakeHost { vm: self, id: ROOT });
        self.run_wakes();
    }

    pub fn done(&self, id: u32) {
        let ctx = Rc::clone(&self.contexts.borrow()[&id]);
        ctx.filter.borrow_mut().on_done(&FakeHost { vm: self, id });
        self.contexts.borrow_mut().remove(&id);
        self.run_wakes();
    }

    pub fn ending(&self, id: u32) -> Ending {
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

/// A 200 answer with this body.
pub fn ok(body: Vec<u8>) -> CalloutResult {
    CalloutResult::Response {
        status: 200,
        headers: vec![(":status".into(), "200".into())],
        body,
    }
}

/// The `x-user-id` a forwarded request carried.
pub fn forwarded_user(vm: &Vm, id: u32) -> Option<String> {
    match vm.ending(id) {
        Ending::Forward(h) => h
            .iter()
            .find(|(k, _)| k == "x-user-id")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        _ => None,
    }
}

/// The peer a request comes from unless a table says otherwise.
pub const DEFAULT_PEER: &str = "192.0.2.10:40000";

/// The tests' default clock: 2023-11-14T22:13:20Z.
pub const NOW: u64 = 1_700_000_000_000;
