//! The CLI's stand-in for Envoy: one request context and the root context, callouts queued for
//! the driver to answer, shared data in memory, and a clock the driver moves. It holds no
//! decision logic; the filter's own `HttpFilter` and `RootFilter` run against it.

use portcullis::cache::SharedData;
use portcullis::context::host::{Host, MetricKind};
use portcullis::jose::crypto::{Backend, ProbeError};
use portcullis::pipeline::VmState;
use portcullis::vocab::callout::{Callout, CalloutResult};
use portcullis::vocab::effect::Reply;
use portcullis::vocab::log::LogLevel;
use portcullis::vocab::stats::Stats;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// The root context's id; the request's context is `REQUEST`.
pub const ROOT: u32 = 0;
pub const REQUEST: u32 = 1;

/// A callout a context dispatched.
pub struct Sent {
    pub from: u32,
    pub token: u32,
    pub callout: Callout,
    /// The VM's stats when it left: which authenticators had settled tells who asked.
    pub stats: Stats,
}

#[derive(Default)]
pub struct World {
    pub headers: RefCell<Vec<(String, Vec<u8>)>>,
    store: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    pub now_ms: Cell<u64>,
    pub peer: RefCell<Option<String>>,
    next_token: Cell<u32>,
    /// Dispatched and not yet answered, oldest first.
    pub queue: RefCell<VecDeque<Sent>>,
    /// The answer being delivered to `on_callout_response`.
    pub delivering: RefCell<Option<CalloutResult>>,
    pub replies: RefCell<Vec<Reply>>,
    /// The request body (`--body`), handed over whole.
    pub body: RefCell<Vec<u8>>,
    /// Filter state keys the request set (without `wasm.portcullis.`), in order.
    pub filter_state: RefCell<Vec<(String, String)>>,
    pub resumed: Cell<bool>,
    /// The request was woken (its keys or a parked-behind callout arrived).
    pub woken: Cell<bool>,
    pub logs: RefCell<Vec<String>>,
    /// The VM's state, once configured.
    pub vm: RefCell<Option<Rc<RefCell<VmState>>>>,
}

pub struct CliHost<'a> {
    pub world: &'a World,
    pub id: u32,
}

impl SharedData for CliHost<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.world.store.borrow().get(key).cloned()
    }

    /// Envoy's compare-and-swap: a stale `cas` is refused.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut store = self.world.store.borrow_mut();
        let current = store.get(key).map_or(0, |(_, c)| *c);
        if cas.is_some_and(|c| c != current) {
            return false;
        }
        store.insert(key.to_string(), (value.to_vec(), current.wrapping_add(1)));
        true
    }
}

impl Host for CliHost<'_> {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.world.headers.borrow().clone()
    }

    fn set_request_header(&self, name: &str, value: &str) {
        let mut h = self.world.headers.borrow_mut();
        h.retain(|(k, _)| k != name);
        h.push((name.to_string(), value.as_bytes().to_vec()));
    }

    fn remove_request_header(&self, name: &str) {
        self.world.headers.borrow_mut().retain(|(k, _)| k != name);
    }

    fn source_address(&self) -> Option<String> {
        self.world.peer.borrow().clone()
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        let body = self.world.body.borrow();
        body.get(..size.min(body.len()))
            .unwrap_or_default()
            .to_vec()
    }

    fn dispatch(&self, callout: &Callout) -> Option<u32> {
        let token = self.world.next_token.get().wrapping_add(1);
        self.world.next_token.set(token);
        let stats = self
            .world
            .vm
            .borrow()
            .as_ref()
            .and_then(|vm| vm.try_borrow().ok().map(|vm| vm.stats.clone()))
            .unwrap_or_default();
        self.world.queue.borrow_mut().push_back(Sent {
            from: self.id,
            token,
            callout: callout.clone(),
            stats,
        });
        Some(token)
    }

    fn callout_result(&self, _: usize, _: usize) -> CalloutResult {
        self.world
            .delivering
            .borrow_mut()
            .take()
            .unwrap_or(CalloutResult::Failed)
    }

    fn send_reply(&self, reply: &Reply) {
        self.world.replies.borrow_mut().push(reply.clone());
    }

    fn resume_request(&self) {
        self.world.resumed.set(true);
    }

    fn now_ms(&self) -> u64 {
        self.world.now_ms.get()
    }

    /// Deferred: the driver wakes the request after the current callback returns, as Envoy
    /// would from another context.
    fn wake(&self, id: u32) {
        if id == REQUEST {
            self.world.woken.set(true);
        }
    }

    fn set_tick_period(&self, _: u64) {}
    fn log(&self, level: LogLevel, message: &str) {
        if level >= LogLevel::Warn {
            self.world.logs.borrow_mut().push(message.to_string());
        }
    }

    fn declare_filter_state(&self, _: &str) {}

    fn set_filter_state(&self, key: &str, value: &str) {
        let mut state = self.world.filter_state.borrow_mut();
        state.retain(|(k, _)| k != key);
        state.push((key.to_string(), value.to_string()));
    }

    /// Stats are not shown; `explain` reads the VM's own counters instead.
    fn define_metric(&self, _: MetricKind, _: &str, _: &[&str]) -> Option<u32> {
        Some(0)
    }

    fn increment_metric(&self, _: u32, _: &[&str], _: u64) {}

    fn record_metric(&self, _: u32, _: &[&str], _: u64) {}

    /// Natively the module's own crypto is the host's: jwt-simple checks every signature.
    fn crypto(&self) -> (Backend, Option<ProbeError>) {
        (Backend::rust(), None)
    }
}
