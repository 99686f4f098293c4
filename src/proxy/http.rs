//! The HTTP-context logic: one `Exchange` per request, effects applied through a `Host`.

use super::host::Host;
use crate::pipeline::callout::CalloutResult;
use crate::pipeline::effect::{Effect, Reply};
use crate::pipeline::{Env, Exchange, Filter, LogLevel, VmState};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Whether the proxy should hold the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// A request whose configuration failed to load is refused, never passed through.
const NOT_CONFIGURED: &str = "{\"error\":{\"code\":500,\"status\":\"Internal Server Error\",\"message\":\"portcullis has no valid configuration\"}}\n";

/// What a VM's HTTP contexts share: the compiled configuration and the VM's state.
#[derive(Clone)]
pub struct Loaded {
    pub filter: Rc<Filter>,
    pub vm: Rc<RefCell<VmState>>,
}

impl Loaded {
    pub fn new(filter: Filter) -> Loaded {
        let vm = Rc::new(RefCell::new(filter.new_state()));
        Loaded {
            filter: Rc::new(filter),
            vm,
        }
    }
}

pub struct HttpFilter {
    exchange: Option<Exchange>,
    /// Host token → the exchange's call id.
    pending: Vec<(u32, u32)>,
    /// Whether the request is held (so a later Continue must resume it).
    paused: bool,
    log_level: LogLevel,
}

impl HttpFilter {
    /// `id` is the proxy's context id: other requests wake this one by it.
    pub fn new(loaded: Option<&Loaded>, id: u32) -> HttpFilter {
        HttpFilter {
            log_level: loaded.map_or(LogLevel::Info, |l| l.filter.log.level),
            exchange: loaded.map(|l| Exchange::new(Rc::clone(&l.filter), Rc::clone(&l.vm), id)),
            pending: Vec::new(),
            paused: false,
        }
    }

    pub fn on_request_headers(&mut self, host: &impl Host) -> Flow {
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
        let effects = exchange.on_request_headers(host.request_headers(), &env);
        let flow = self.apply(host, effects);
        self.paused = flow == Flow::Pause;
        flow
    }

    pub fn on_callout_response(
        &mut self,
        host: &impl Host,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let Some(pos) = self.pending.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, call) = self.pending.swap_remove(pos);
        let result = host.callout_result(num_headers, body_size);
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
            for id in exchange.abandon() {
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
                Effect::Dispatch(call, callout) => match host.dispatch(&callout) {
                    Some(token) => self.pending.push((token, call)),
                    None => {
                        host.log(
                            LogLevel::Warn,
                            &format!(
                                "callout to cluster {} could not be dispatched",
                                callout.cluster
                            ),
                        );
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
                },
                Effect::SetHeader(name, value) => host.set_request_header(&name, &value),
                Effect::RemoveHeader(name) => host.remove_request_header(&name),
                Effect::Wake(ids) => ids.into_iter().for_each(|id| host.wake(id)),
                Effect::Continue => flow = Flow::Continue,
                Effect::Reply(reply) => {
                    host.send_reply(&reply);
                    flow = Flow::Pause;
                }
            }
        }
        if self.log_level <= LogLevel::Debug {
            if let Some(d) = self.exchange.as_ref().and_then(Exchange::decision) {
                host.log(
                    LogLevel::Debug,
                    &format!(
                        "decision rule={} status={} reason={}",
                        d.rule.as_deref().unwrap_or("-"),
                        d.status.map_or("forward".to_string(), |s| s.to_string()),
                        d.reason
                    ),
                );
            }
        }
        flow
    }
}
