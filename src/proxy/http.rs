//! The HTTP-context logic: one `Exchange` per request, effects applied through a `Host`.

use super::host::Host;
use crate::pipeline::callout::CalloutResult;
use crate::pipeline::effect::Effect;
use crate::pipeline::{Exchange, Filter, LogLevel};
use std::rc::Rc;

/// Whether the proxy should hold the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// A request whose configuration failed to load is refused, never passed through.
const NOT_CONFIGURED: &str = "{\"error\":{\"code\":500,\"status\":\"Internal Server Error\",\"message\":\"portcullis has no valid configuration\"}}\n";

pub struct HttpFilter {
    exchange: Option<Exchange>,
    /// Host token → the exchange's call id.
    pending: Vec<(u32, u32)>,
    /// Whether the request is held (so a later Continue must resume it).
    paused: bool,
    log_level: LogLevel,
}

impl HttpFilter {
    pub fn new(filter: Option<Rc<Filter>>) -> HttpFilter {
        HttpFilter {
            log_level: filter.as_ref().map_or(LogLevel::Info, |f| f.log.level),
            exchange: filter.map(Exchange::new),
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
            host.send_reply(&crate::pipeline::effect::Reply {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: NOT_CONFIGURED.to_string(),
            });
            return Flow::Pause;
        };
        let effects = exchange.on_request_headers(host.request_headers(), host.now_ms());
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
        let Some(exchange) = self.exchange.as_mut() else {
            return;
        };
        let effects = exchange.on_callout_result(call, result, host.now_ms());
        if self.apply(host, effects) == Flow::Continue && self.paused {
            self.paused = false;
            host.resume_request();
        }
    }

    fn apply(&mut self, host: &impl Host, effects: Vec<Effect>) -> Flow {
        let mut queue = std::collections::VecDeque::from(effects);
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
                            queue.extend(exchange.on_callout_result(
                                call,
                                CalloutResult::Failed,
                                host.now_ms(),
                            ));
                        }
                    }
                },
                Effect::SetHeader(name, value) => host.set_request_header(&name, &value),
                Effect::RemoveHeader(name) => host.remove_request_header(&name),
                Effect::Continue => flow = Flow::Continue,
                Effect::Reply(reply) => {
                    host.send_reply(&reply);
                    flow = Flow::Pause;
                }
            }
        }
        if let Some(d) = self.exchange.as_ref().and_then(Exchange::decision) {
            if self.log_level <= LogLevel::Debug {
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
