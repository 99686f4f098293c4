//! Envoy stats through proxy-wasm's metric calls. Tags are encoded in the stat name the way
//! Istio does (`key=.=value;.;`), and `envoy/kratos.yaml`'s `stats_tags` extract them, so
//! `/stats/prometheus` shows `portcullis_requests_total{rule="echo",decision="allow",…}`. The
//! request path only bumps in-memory counters (`pipeline::stats`); the root context publishes
//! their growth here on its tick. Every tag value comes from the configuration (rule ids,
//! handler and cluster names) or a fixed set.

use super::host::{Host, MetricKind};
use crate::cache::jwks;
use crate::filter::Filter;
use crate::pipeline::VmState;
use crate::vocab::callout::CalloutResult;
use crate::vocab::stats::Stats;
use std::cell::RefCell;
use std::collections::HashMap;

/// One cluster's callouts: answers counted by result until the tick publishes them, and the
/// latency histogram's id, defined once.
struct ClusterCalls {
    cluster: String,
    /// By `CALLOUT_RESULTS`.
    counted: [u64; 3],
    published: [u64; 3],
    histogram: Option<u32>,
}

/// Envoy answers a call that ran out of time with its own 504: a timeout.
const CALLOUT_RESULTS: [&str; 3] = ["ok", "failed", "timeout"];

/// The last published values, to publish differences.
#[derive(Default)]
struct Published {
    stats: Stats,
    session: (u64, u64, u64, u64, u64, u64),
    token_evictions: u64,
    jwks: jwks::Counters,
}

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    published: RefCell<Published>,
    /// By cluster: a configuration names a few, so a scan is cheaper than hashing.
    calls: RefCell<Vec<ClusterCalls>>,
}

fn stat_name(name: &str, tags: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(64);
    for (k, v) in tags {
        s.push_str(k);
        s.push_str("=.=");
        s.extend(v.chars().map(|c| if c == ';' { '_' } else { c }));
        s.push_str(";.;");
    }
    s.push_str(name);
    s
}

impl Metrics {
    fn id(
        &self,
        host: &impl Host,
        kind: MetricKind,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Option<u32> {
        let full = stat_name(name, tags);
        if let Some(id) = self.ids.borrow().get(&full) {
            return Some(*id);
        }
        let id = host.define_metric(kind, &full)?;
        self.ids.borrow_mut().insert(full, id);
        Some(id)
    }

    pub fn count(&self, host: &impl Host, name: &str, tags: &[(&str, &str)], by: u64) {
        if by == 0 {
            return;
        }
        if let Some(id) = self.id(host, MetricKind::Counter, name, tags) {
            host.increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    fn gauge(&self, host: &impl Host, name: &str, value: u64) {
        if let Some(id) = self.id(host, MetricKind::Gauge, name, &[]) {
            host.record_metric(id, value);
        }
    }

    /// Which crypto backend checks signatures: `portcullis_crypto_backend{backend}` is 1 for
    /// the one in use and 0 for the other.
    pub fn crypto_backend(&self, host: &impl Host, in_use: &str) {
        for backend in ["host", "rust"] {
            if let Some(id) = self.id(
                host,
                MetricKind::Gauge,
                "portcullis_crypto_backend",
                &[("backend", backend)],
            ) {
                host.record_metric(id, u64::from(backend == in_use));
            }
        }
    }

    /// A callout's answer: counted by cluster and result (published on the tick), its latency
    /// recorded: one host call per answer, no name formatted after the first.
    pub fn callout(
        &self,
        host: &impl Host,
        cluster: &str,
        result: &CalloutResult,
        elapsed_ms: u64,
    ) {
        // Indexes into CALLOUT_RESULTS.
        let outcome = match result {
            CalloutResult::Response { status: 504, .. } => 2,
            CalloutResult::Response { .. } => 0,
            CalloutResult::Failed => 1,
        };
        let mut calls = self.calls.borrow_mut();
        let i = match calls.iter().position(|c| c.cluster == cluster) {
            Some(i) => i,
            None => {
                let tags = [("cluster", cluster)];
                let name = "portcullis_callout_duration_ms";
                calls.push(ClusterCalls {
                    cluster: cluster.to_string(),
                    counted: [0; 3],
                    published: [0; 3],
                    histogram: self.id(host, MetricKind::Histogram, name, &tags),
                });
                calls.len() - 1
            }
        };
        if let Some(c) = calls.get_mut(i) {
            if let Some(n) = c.counted.get_mut(outcome) {
                *n += 1;
            }
            if let Some(id) = c.histogram {
                host.record_metric(id, elapsed_ms);
            }
        }
    }

    /// A new configuration starts its counters from zero.
    pub fn restart(&self) {
        *self.published.borrow_mut() = Published::default();
        self.calls.borrow_mut().clear();
    }

    /// Publishes what the VM counted since the last call (the root context's tick), the caches
    /// it shares with other workers included.
    pub fn publish(&self, host: &impl Host, filter: &Filter, vm: &VmState) {
        self.publish_parts(host, filter, vm, true);
    }

    /// Publishes what only this worker counted (its requests, authenticators, verified tokens
    /// and callouts), for a worker whose session cache and key sets are the process's: their
    /// counts are the root's to publish, once.
    pub fn publish_own(&self, host: &impl Host, filter: &Filter, vm: &VmState) {
        self.publish_parts(host, filter, vm, false);
    }

    fn publish_parts(&self, host: &impl Host, filter: &Filter, vm: &VmState, caches: bool) {
        let mut last = self.published.borrow_mut();
        for ((rule, status), n) in vm.stats.decisions() {
            let before = last.stats.decisions_of(rule, status);
            let id = rule
                .and_then(|i| filter.rules.get(i))
                .map_or("none", |r| &*r.id);
            let code = status.to_string();
            let (decision, status) = if status == 0 {
                ("allow", "upstream")
            } else {
                ("deny", code.as_str())
            };
            let tags = [("rule", id), ("decision", decision), ("status", status)];
            self.count(host, "portcullis_requests_total", &tags, n - before);
        }
        for ((handler, outcome), n) in vm.stats.authenticators() {
            let before = last.stats.authenticator_count(handler, outcome);
            let tags = [("handler", handler), ("outcome", outcome.name())];
            self.count(host, "portcullis_authenticator_total", &tags, n - before);
        }
        let cache = |this: &Self, cache: &str, result: &str, now: u64, before: u64| {
            this.count(
                host,
                "portcullis_cache_total",
                &[("cache", cache), ("result", result)],
                now.saturating_sub(before),
            );
        };
        cache(
            self,
            "jwt",
            "hit",
            vm.stats.token_hits,
            last.stats.token_hits,
        );
        cache(
            self,
            "jwt",
            "miss",
            vm.stats.token_misses,
            last.stats.token_misses,
        );
        cache(
            self,
            "jwt",
            "eviction",
            vm.authn.tokens.evictions(),
            last.token_evictions,
        );
        for c in self.calls.borrow_mut().iter_mut() {
            for ((result, n), before) in CALLOUT_RESULTS
                .iter()
                .zip(c.counted)
                .zip(c.published.iter_mut())
            {
                let tags = [("cluster", c.cluster.as_str()), ("result", result)];
                self.count(host, "portcullis_callouts_total", &tags, n - *before);
                *before = n;
            }
        }
        last.stats = vm.stats.clone();
        last.token_evictions = vm.authn.tokens.evictions();
        if !caches {
            return;
        }
        let session = vm.authn.sessions.with(|c| {
            let s = &c.stats;
            (
                s.hits,
                s.shared_hits,
                s.misses,
                c.evictions(),
                s.shared_waits,
                s.shared_wait_expiries,
            )
        });
        cache(self, "session", "hit", session.0, last.session.0);
        cache(self, "session", "shared_hit", session.1, last.session.1);
        cache(self, "session", "miss", session.2, last.session.2);
        cache(self, "session", "eviction", session.3, last.session.3);
        cache(self, "session", "shared_wait", session.4, last.session.4);
        cache(
            self,
            "session",
            "shared_wait_expired",
            session.5,
            last.session.5,
        );
        let (j, ready) = vm.jwks.with(|s| (s.counters, s.ready()));
        let jwks = |this: &Self, result: &str, now: u64, before: u64| {
            this.count(
                host,
                "portcullis_jwks_fetches_total",
                &[("result", result)],
                now.saturating_sub(before),
            );
        };
        jwks(self, "started", j.fetches, last.jwks.fetches);
        jwks(self, "failed", j.failures, last.jwks.failures);
        jwks(self, "adopted", j.adopted, last.jwks.adopted);
        if !filter.jwks_sources.is_empty() {
            self.gauge(host, "portcullis_jwks_ready", u64::from(ready));
        }
        last.session = session;
        last.jwks = j;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_encoded_istio_style() {
        assert_eq!(
            super::stat_name(
                "portcullis_requests_total",
                &[("rule", "a;b"), ("status", "401")]
            ),
            "rule=.=a_b;.;status=.=401;.;portcullis_requests_total"
        );
    }
}
