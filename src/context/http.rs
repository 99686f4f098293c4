//! The HTTP-context logic: one `Exchange` per request, effects applied through a `Host`.

use super::host::Host;
use super::in_flight::InFlight;
use super::metrics::Metrics;
use super::MAX_CALLOUT_BODY;
use crate::cache::session::POLL_TICK_MS;
use crate::filter::Filter;
use crate::pipeline::decision::Decision;
use crate::pipeline::{Env, Exchange, Shared, VmState};
use crate::vocab::callout::CalloutResult;
use crate::vocab::effect::{Effect, Reply};
use crate::vocab::log::LogLevel;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

/// Whether the proxy should hold the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// A request whose configuration failed to load is refused, never passed through.
const NOT_CONFIGURED: &str = "{\"error\":{\"code\":500,\"status\":\"Internal Server Error\",\"message\":\"portcullis has no valid configuration\"}}\n";

/// What a VM's HTTP contexts share: the compiled configuration, the VM's state, its stats.
#[derive(Clone)]
pub struct Loaded {
    pub filter: Arc<Filter>,
    pub vm: Rc<RefCell<VmState>>,
    pub metrics: Rc<Metrics>,
    /// The caches this VM shares with the process's other workers, when workers are threads.
    pub shared: Option<Shared>,
}

impl Loaded {
    pub fn new(filter: Filter) -> Loaded {
        Loaded::with_metrics(filter, Rc::default())
    }

    /// A VM of its own (proxy-wasm: one per worker).
    pub fn with_metrics(filter: Filter, metrics: Rc<Metrics>) -> Loaded {
        let vm = Rc::new(RefCell::new(VmState::new(&filter)));
        Loaded {
            filter: Arc::new(filter),
            vm,
            metrics,
            shared: None,
        }
    }

    /// One worker of a process whose workers are threads: the compiled configuration and the
    /// caches in `shared` are every worker's, the rest is this worker's own.
    pub fn sharing(filter: Arc<Filter>, shared: Shared, metrics: Rc<Metrics>) -> Loaded {
        let vm = Rc::new(RefCell::new(VmState::sharing(&shared)));
        Loaded {
            filter,
            vm,
            metrics,
            shared: Some(shared),
        }
    }
}

pub struct HttpFilter {
    exchange: Option<Exchange>,
    metrics: Option<Rc<Metrics>>,
    /// The exchange's calls in flight, by their call id.
    pending: InFlight<u32>,
    /// Whether the request is held (so a later Continue must resume it).
    paused: bool,
    log_level: LogLevel,
    /// The decision has been logged.
    logged: bool,
}

impl HttpFilter {
    /// `id` is the proxy's context id: other requests wake this one by it.
    pub fn new(loaded: Option<&Loaded>, id: u32) -> HttpFilter {
        HttpFilter {
            log_level: loaded.map_or(LogLevel::Info, |l| l.filter.log.level),
            exchange: loaded.map(|l| Exchange::new(Arc::clone(&l.filter), Rc::clone(&l.vm), id)),
            metrics: loaded.map(|l| Rc::clone(&l.metrics)),
            pending: InFlight::default(),
            paused: false,
            logged: false,
        }
    }

    pub fn on_request_headers(&mut self, host: &impl Host) -> Flow {
        #[cfg(feature = "test-trap")]
        super::trap::on_request_headers(&host.request_headers());
        let Some(exchange) = self.exchange.as_mut() else {
            host.log(
                LogLevel::Error,
                "request refused: no valid configuration is loaded",
            );
            host.send_reply(&Reply {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: NOT_CONFIGURED.to_string(),
            });
            return Flow::Pause;
        };
        let env = Env {
            now_ms: host.now_ms(),
            shared: host,
        };
        if exchange.reads_peer() {
            exchange.set_peer(host.source_address());
        }
        let effects = exchange.on_request_headers(host.request_headers(), &env);
        let flow = self.apply(host, effects);
        self.paused = flow == Flow::Pause;
        flow
    }

    /// How the request was decided, once it has been.
    pub fn decision(&self) -> Option<&Decision> {
        self.exchange.as_ref().and_then(Exchange::decision)
    }

    /// The proxy said a body follows the headers.
    pub fn body_follows(&mut self) {
        if let Some(exchange) = self.exchange.as_mut() {
            exchange.body_follows();
        }
    }

    /// A body chunk arrived. Until the decision, the proxy buffers it (Pause); at the end of
    /// the stream an authorizer that reads the body gets all of it.
    pub fn on_request_body(&mut self, host: &impl Host, size: usize, end_of_stream: bool) -> Flow {
        if !self.paused {
            return Flow::Continue;
        }
        let wants = self.exchange.as_ref().is_some_and(Exchange::wants_body);
        if end_of_stream && wants {
            let body = host.request_body(size);
            let env = Env {
                now_ms: host.now_ms(),
                shared: host,
            };
            let effects = self
                .exchange
                .as_mut()
                .map(|e| e.on_request_body(body, &env))
                .unwrap_or_default();
            // Continuing by the return value: resuming from inside the body callback is not
            // something every host allows.
            if self.apply(host, effects) == Flow::Continue {
                self.paused = false;
                return Flow::Continue;
            }
        }
        Flow::Pause
    }

    pub fn on_callout_response(
        &mut self,
        host: &impl Host,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let metrics = self.metrics.as_deref();
        let sizes = (num_headers, body_size);
        let Some((call, result)) =
            self.pending
                .answer(host, metrics, token, sizes, MAX_CALLOUT_BODY)
        else {
            return;
        };
        self.step(host, |exchange, env| {
            exchange.on_callout_result(call, result, env)
        });
    }

    /// Another request answered the callout this one was parked behind.
    pub fn on_wake(&mut self, host: &impl Host) {
        self.step(host, |exchange, env| exchange.on_wake(env));
    }

    /// The request is gone; requests parked behind its callout must not wait forever.
    pub fn on_done(&mut self, host: &impl Host) {
        if let Some(exchange) = self.exchange.as_mut() {
            for id in exchange.abandon(host) {
                host.wake(id);
            }
        }
    }

    fn step(&mut self, host: &impl Host, f: impl FnOnce(&mut Exchange, &Env<'_>) -> Vec<Effect>) {
        let Some(exchange) = self.exchange.as_mut() else {
            return;
        };
        let env = Env {
            now_ms: host.now_ms(),
            shared: host,
        };
        let effects = f(exchange, &env);
        if self.apply(host, effects) == Flow::Continue && self.paused {
            self.paused = false;
            host.resume_request();
        }
    }

    fn apply(&mut self, host: &impl Host, effects: Vec<Effect>) -> Flow {
        let mut queue = VecDeque::from(effects);
        let mut flow = Flow::Pause;
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Dispatch(call, callout) => {
                    if !self.pending.send(host, &callout, call) {
                        if let Some(exchange) = self.exchange.as_mut() {
                            let env = Env {
                                now_ms: host.now_ms(),
                                shared: host,
                            };
                            queue.extend(exchange.on_callout_result(
                                call,
                                CalloutResult::Failed,
                                &env,
                            ));
                        }
                    }
                }
                Effect::SetHeader(name, value) => host.set_request_header(&name, &value),
                Effect::RemoveHeader(name) => host.remove_request_header(&name),
                Effect::Wake(ids) => ids.into_iter().for_each(|id| host.wake(id)),
                Effect::FilterState(key, value) => host.set_filter_state(&key, &value),
                Effect::Continue => flow = Flow::Continue,
                Effect::Reply(reply) => {
                    host.send_reply(&reply);
                    flow = Flow::Pause;
                }
            }
        }
        self.log_decision(host);
        // The request parked behind another VM's call: the root's tick polls for its answer.
        if self
            .exchange
            .as_ref()
            .is_some_and(Exchange::take_poll_wanted)
        {
            host.set_tick_period(POLL_TICK_MS);
        }
        flow
    }

    /// One JSON line per decision: at debug (the default `info` is quiet per request), or at
    /// warn when the filter itself failed (5xx), which an operator must see.
    fn log_decision(&mut self, host: &impl Host) {
        if self.logged {
            return;
        }
        let Some((d, leak)) = self
            .exchange
            .as_ref()
            .and_then(|e| e.decision().map(|d| (d, e.leak_sensitive_values())))
        else {
            return;
        };
        self.logged = true;
        let level = if d.status.is_some_and(|s| s >= 500) {
            LogLevel::Warn
        } else {
            LogLevel::Debug
        };
        if level >= self.log_level {
            host.log(level, &d.log_line(host.now_ms(), leak));
        }
    }
}
