//! The proxy-wasm binding: the context logic (`crate::context`) bound to the proxy-wasm ABI, for
//! the `.wasm` (Envoy's wasm filter, Istio's `WasmPlugin`, Envoy Gateway's wasm extension). Only
//! raw `hostcalls` are used: the SDK's trait helpers unwrap host errors, and a panic here would
//! trap the VM.
//!
//! No callback runs another context's logic on its stack: `Host::wake` only queues, and every
//! entry point drains the queue (`Vm::run_wakes`) after its own context's borrow is released.
//! So no `RefCell` borrow is held while another request's pipeline runs, and a woken request is
//! never found busy.
//!
//! Calls and their answers: the SDK files each call under the context whose callback is running
//! when it is sent, hands the answer to that context, and drops it once that context is gone.
//! So the calls a woken request sends are sent while the root context's callback runs (an HTTP
//! callback drains its wakes through the SDK's own queue-ready entry point, `Vm::wake_from`):
//! the root lives as long as the VM, and passes each answer to the request that sent the call
//! (`Vm::owners`).

mod raw_abi;

use crate::cache::SharedData;
use crate::context::host::{Host, MetricKind};
use crate::context::http::{Flow, HttpFilter};
use crate::context::metrics::EncodedStats;
use crate::context::root::RootFilter;
use crate::context::MAX_CALLOUT_BODY;
use crate::jose::crypto::{self, Backend, ProbeError};
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::effect::{Reply, FILTER_STATE_NAMESPACE};
use crate::vocab::log::LogLevel;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action, BufferType, ContextType, LogLevel as WasmLevel, MapType, MetricType,
};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(WasmLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root {
            inner: RootFilter::default(),
            host: ProxyHost { id: context_id, registry: Rc::new(Vm::new(context_id)) },
        })
    });
}}

/// What the VM's contexts share: the live HTTP contexts by id, so one request (or the root's
/// tick) can wake another, and the wakes queued by the callback in progress.
struct Vm {
    contexts: RefCell<HashMap<u32, Weak<RefCell<HttpFilter>>>>,
    wakes: RefCell<VecDeque<u32>>,
    /// Which context sent each call in flight. The SDK hands a call's answer to the context
    /// whose callback was running when the call was sent, which for a woken request is the
    /// context that woke it (the root's tick, or another request): the answer is passed on.
    owners: RefCell<HashMap<u32, u32>>,
    /// The root context's id: the registry is made with it.
    root: u32,
    /// The VM's stats, by family and tag values.
    stats: EncodedStats,
}

/// The queue id `Vm::wake_from` notifies the root context with. portcullis registers no shared
/// queue, so the proxy itself never calls `on_queue_ready`.
const WAKE_QUEUE: u32 = 0;

type Registry = Rc<Vm>;

/// Wakes one callback may start, with those they start in turn: far more than a VM's parked
/// requests, so reaching it means a loop, which is logged and cut.
const MAX_WAKES_PER_CALLBACK: usize = 100_000;

impl Vm {
    fn new(root: u32) -> Vm {
        Vm {
            contexts: RefCell::default(),
            wakes: RefCell::default(),
            owners: RefCell::default(),
            root,
            stats: EncodedStats::default(),
        }
    }

    /// Runs the queued wakes, each in its own context, then restores `current` as the
    /// effective context. Called at the end of every entry point, with no borrow held.
    fn run_wakes(self: &Rc<Self>, current: u32) {
        let mut ran = 0usize;
        loop {
            let Some(id) = self.wakes.borrow_mut().pop_front() else {
                break;
            };
            ran += 1;
            if ran > MAX_WAKES_PER_CALLBACK {
                self.wakes.borrow_mut().clear();
                let _ = hostcalls::log(WasmLevel::Error, "portcullis: wake loop cut");
                break;
            }
            let target = self.contexts.borrow().get(&id).and_then(Weak::upgrade);
            let Some(target) = target else { continue };
            if hostcalls::set_effective_context(id).is_err() {
                continue;
            }
            let host = ProxyHost {
                id,
                registry: Rc::clone(self),
            };
            let woke = match target.try_borrow_mut() {
                Ok(mut waiter) => {
                    waiter.on_wake(&host);
                    true
                }
                Err(_) => false,
            };
            // Unreachable by construction (no borrow outlives its callback); said loudly rather
            // than leaving the request waiting in silence.
            if !woke {
                host.log(
                    LogLevel::Error,
                    "portcullis: a parked request was busy when woken",
                );
            }
        }
        if ran > 0 {
            let _ = hostcalls::set_effective_context(current);
        }
    }

    /// Runs the wakes an HTTP context's callback queued, from the root context: the SDK's
    /// exported `proxy_on_queue_ready`, entered from here, makes the root the running context
    /// (so it files the woken requests' calls under the root, which outlives every request)
    /// and calls `Root::on_queue_ready`, which runs them. Never from a root callback: the SDK
    /// holds its roots borrowed then (those run their wakes directly).
    fn wake_from(self: &Rc<Self>, current: u32) {
        if self.wakes.borrow().is_empty() {
            return;
        }
        raw_abi::queue_ready(self.root, WAKE_QUEUE);
        let _ = hostcalls::set_effective_context(current);
    }

    /// The context that sent call `token`, when it is not `receiver`, the context the SDK
    /// delivered its answer to.
    fn owner_other_than(&self, token: u32, receiver: u32) -> Option<u32> {
        let owner = self.owners.borrow_mut().remove(&token)?;
        (owner != receiver).then_some(owner)
    }

    /// Delivers the answer to call `token` to the request that sent it, in its own context.
    fn pass_answer(
        self: &Rc<Self>,
        owner: u32,
        token: u32,
        (num_headers, body_size): (usize, usize),
        current: u32,
    ) {
        let target = self.contexts.borrow().get(&owner).and_then(Weak::upgrade);
        if let Some(target) = target {
            if hostcalls::set_effective_context(owner).is_ok() {
                let host = ProxyHost {
                    id: owner,
                    registry: Rc::clone(self),
                };
                if let Ok(mut inner) = target.try_borrow_mut() {
                    inner.on_callout_response(&host, token, num_headers, body_size);
                }
                let _ = hostcalls::set_effective_context(current);
            }
        }
    }
}

struct Root {
    inner: RootFilter,
    host: ProxyHost,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        let registry = &self.host.registry;
        match registry.owner_other_than(token, self.host.id) {
            Some(owner) => {
                registry.pass_answer(owner, token, (num_headers, body_size), self.host.id)
            }
            None => self
                .inner
                .on_callout_response(&self.host, token, num_headers, body_size),
        }
        self.host.registry.run_wakes(self.host.id);
    }
}

impl RootContext for Root {
    fn on_queue_ready(&mut self, queue: u32) {
        if queue == WAKE_QUEUE {
            self.host.registry.run_wakes(self.host.id);
        }
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.inner.configure(&bytes, &self.host)
    }

    fn on_tick(&mut self) {
        self.inner.on_tick(&self.host);
        self.host.registry.run_wakes(self.host.id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let inner = Rc::new(RefCell::new(HttpFilter::new(
            self.inner.loaded(),
            context_id,
        )));
        self.host
            .registry
            .contexts
            .borrow_mut()
            .insert(context_id, Rc::downgrade(&inner));
        Some(Box::new(Http {
            inner,
            host: ProxyHost {
                id: context_id,
                registry: Rc::clone(&self.host.registry),
            },
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    inner: Rc<RefCell<HttpFilter>>,
    host: ProxyHost,
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        let registry = &self.host.registry;
        match registry.owner_other_than(token, self.host.id) {
            Some(owner) => {
                registry.pass_answer(owner, token, (num_headers, body_size), self.host.id)
            }
            None => {
                if let Ok(mut inner) = self.inner.try_borrow_mut() {
                    inner.on_callout_response(&self.host, token, num_headers, body_size);
                }
            }
        }
        self.host.registry.wake_from(self.host.id);
    }

    fn on_done(&mut self) -> bool {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.on_done(&self.host);
        }
        self.host
            .registry
            .contexts
            .borrow_mut()
            .remove(&self.host.id);
        // Calls it sent are answered to nobody now (the SDK may still deliver to another
        // context, which does not know the token).
        let id = self.host.id;
        self.host
            .registry
            .owners
            .borrow_mut()
            .retain(|_, owner| *owner != id);
        self.host.registry.wake_from(self.host.id);
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        let flow = match self.inner.try_borrow_mut() {
            Ok(mut inner) => {
                if !end_of_stream {
                    inner.body_follows();
                }
                inner.on_request_headers(&self.host)
            }
            Err(_) => Flow::Pause,
        };
        self.host.registry.wake_from(self.host.id);
        action(flow)
    }

    // Envoy calls this before the decision only under `allow_on_headers_stop_iteration`; the
    // SDK's default (Continue) would then send the held headers upstream undecided.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let flow = match self.inner.try_borrow_mut() {
            Ok(mut inner) => inner.on_request_body(&self.host, body_size, end_of_stream),
            Err(_) => Flow::Pause,
        };
        self.host.registry.wake_from(self.host.id);
        action(flow)
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

/// The real host, through the ABI, as seen from context `id`.
struct ProxyHost {
    id: u32,
    registry: Registry,
}

impl ProxyHost {
    /// The proxy's stat for family `id` and these tag values: proxy-wasm stats have no tags,
    /// so each combination is its own stat, named with the tags encoded.
    fn stat(&self, id: u32, values: &[&str]) -> Option<u32> {
        self.registry.stats.series(id, values, |kind, name| {
            let kind = match kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Histogram => MetricType::Histogram,
            };
            hostcalls::define_metric(kind, name).ok()
        })
    }
}

impl SharedData for ProxyHost {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas.unwrap_or(0))),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

impl Host for ProxyHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn set_request_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }

    fn remove_request_header(&self, name: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
    }

    fn source_address(&self) -> Option<String> {
        hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn dispatch(&self, callout: &Callout) -> Option<u32> {
        let headers: Vec<(&str, &str)> = callout
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let token = hostcalls::dispatch_http_call(
            &callout.cluster,
            headers,
            callout.body.as_deref(),
            Vec::new(),
            Duration::from_millis(callout.timeout_ms),
        )
        .ok()?;
        self.registry.owners.borrow_mut().insert(token, self.id);
        Some(token)
    }

    fn callout_result(&self, num_headers: usize, body_size: usize) -> CalloutResult {
        if num_headers == 0 || body_size > MAX_CALLOUT_BODY {
            return CalloutResult::Failed;
        }
        let headers = hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default();
        let status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse().ok());
        let Some(status) = status else {
            return CalloutResult::Failed;
        };
        let body = if body_size == 0 {
            Vec::new()
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        CalloutResult::Response {
            status,
            headers,
            body,
        }
    }

    fn send_reply(&self, reply: &Reply) {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let _ = hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
    }

    fn resume_request(&self) {
        let _ = hostcalls::resume_http_request();
    }

    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn wake(&self, id: u32) {
        self.registry.wakes.borrow_mut().push_back(id);
    }

    /// Envoy restarts the root context's timer with the new period, whichever context asks.
    fn set_tick_period(&self, ms: u64) {
        let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => WasmLevel::Trace,
            LogLevel::Debug => WasmLevel::Debug,
            LogLevel::Info => WasmLevel::Info,
            LogLevel::Warn => WasmLevel::Warn,
            LogLevel::Error => WasmLevel::Error,
        };
        let _ = hostcalls::log(level, message);
    }

    /// Envoy's `declare_property` foreign function: the key's prototype lives in the root
    /// context, so this runs from `on_configure`. A second declaration (a reconfigure) is
    /// refused by Envoy and changes nothing; a host without the function (`NotFound`) stores
    /// bytes.
    fn declare_filter_state(&self, key: &str) {
        let name = format!("{FILTER_STATE_NAMESPACE}.{key}");
        let _ = raw_abi::call_foreign("declare_property", &raw_abi::declaration(&name));
    }

    fn set_filter_state(&self, key: &str, value: &str) {
        // `portcullis.<key>`, on the stack for the keys portcullis sets on every request.
        let mut buf = [0u8; 64];
        let long;
        let prefix = FILTER_STATE_NAMESPACE.len() + 1;
        let path: &[u8] = match buf.get_mut(..prefix + key.len()) {
            Some(out) => {
                let (ns, rest) = out.split_at_mut(prefix);
                if let Some((dot, ns)) = ns.split_last_mut() {
                    ns.copy_from_slice(FILTER_STATE_NAMESPACE.as_bytes());
                    *dot = b'.';
                }
                rest.copy_from_slice(key.as_bytes());
                out
            }
            None => {
                long = format!("{FILTER_STATE_NAMESPACE}.{key}");
                long.as_bytes()
            }
        };
        // One path segment: Envoy stores it as `wasm.` + the path.
        raw_abi::set_property(path, value.as_bytes());
    }

    fn define_metric(&self, kind: MetricKind, name: &str, tags: &[&str]) -> Option<u32> {
        Some(self.registry.stats.define(kind, name, tags))
    }

    fn increment_metric(&self, id: u32, values: &[&str], by: u64) {
        if let Some(stat) = self.stat(id, values) {
            let _ = hostcalls::increment_metric(stat, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    fn record_metric(&self, id: u32, values: &[&str], value: u64) {
        if let Some(stat) = self.stat(id, values) {
            let _ = hostcalls::record_metric(stat, value);
        }
    }

    fn crypto(&self) -> (Backend, Option<ProbeError>) {
        crypto::select(raw_abi::ForeignFunctions)
    }
}
