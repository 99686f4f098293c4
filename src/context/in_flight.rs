//! Callouts in flight for one context: what each host token will answer, and when the call
//! left. The one place calls are sent, taken back by token, and counted in the callout stats.

use super::host::Host;
use super::metrics::Metrics;
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::log::LogLevel;

struct Call<T> {
    token: u32,
    what: T,
    cluster: String,
    sent_ms: u64,
}

pub struct InFlight<T>(Vec<Call<T>>);

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight(Vec::new())
    }
}

impl<T> InFlight<T> {
    /// Sends `callout` on behalf of `what`; `false` (and logged) when the host refuses it.
    pub fn send(&mut self, host: &impl Host, callout: &Callout, what: T) -> bool {
        match host.dispatch(callout) {
            Some(token) => {
                self.0.push(Call {
                    token,
                    what,
                    cluster: callout.cluster.clone(),
                    sent_ms: host.now_ms(),
                });
                true
            }
            None => {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "callout to cluster {} could not be dispatched",
                        callout.cluster
                    ),
                );
                false
            }
        }
    }

    /// The answer to `token` and what it was for; answers larger than `max_body` count as
    /// failed calls.
    pub fn answer(
        &mut self,
        host: &impl Host,
        metrics: Option<&Metrics>,
        token: u32,
        (num_headers, body_size): (usize, usize),
        max_body: usize,
    ) -> Option<(T, CalloutResult)> {
        let pos = self.0.iter().position(|c| c.token == token)?;
        let call = self.0.swap_remove(pos);
        let result = if body_size > max_body {
            CalloutResult::Failed
        } else {
            host.callout_result(num_headers, body_size)
        };
        if let Some(m) = metrics {
            let elapsed = host.now_ms().saturating_sub(call.sent_ms);
            m.callout(host, &call.cluster, &result, elapsed);
        }
        Some((call.what, result))
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}
