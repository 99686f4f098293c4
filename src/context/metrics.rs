//! Envoy stats. Every stat is a family (a name and its tag names) defined when a configuration
//! loads, and counted with tag values: a native host takes them as labels; proxy-wasm has
//! untagged stats only, so its binding encodes the tags in the name the way Istio does
//! (`key=.=value;.;`, `encoded_name`) and `envoy/kratos.yaml`'s `stats_tags` extract them. Either
//! way `/stats/prometheus` shows `portcullis_requests_total{rule="echo",decision="allow",…}`.
//! The request path only bumps in-memory counters (`pipeline::stats`); their growth is published
//! here, once a second. Every tag value comes from the configuration (rule ids, handler and
//! cluster names) or a fixed set.

use super::host::{Host, MetricKind};
use crate::cache::jwks;
use crate::filter::Filter;
use crate::pipeline::VmState;
use crate::vocab::callout::CalloutResult;
use crate::vocab::stats::Stats;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// One cluster's callouts: answers counted by result until they are published.
struct ClusterCalls {
    cluster: String,
    /// By `CALLOUT_RESULTS`.
    counted: [u64; 3],
    published: [u64; 3],
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

/// Every stat portcullis keeps: kind, name, tag names.
const FAMILIES: [(MetricKind, &str, &[&str]); 9] = [
    (MetricKind::Counter, "portcullis_config_total", &["result"]),
    (
        MetricKind::Counter,
        "portcullis_requests_total",
        &["rule", "decision", "status"],
    ),
    (
        MetricKind::Counter,
        "portcullis_authenticator_total",
        &["handler", "outcome"],
    ),
    (
        MetricKind::Counter,
        "portcullis_cache_total",
        &["cache", "result"],
    ),
    (
        MetricKind::Counter,
        "portcullis_jwks_fetches_total",
        &["result"],
    ),
    (MetricKind::Gauge, "portcullis_jwks_ready", &[]),
    (
        MetricKind::Counter,
        "portcullis_callouts_total",
        &["cluster", "result"],
    ),
    (
        MetricKind::Histogram,
        "portcullis_callout_duration_ms",
        &["cluster"],
    ),
    (MetricKind::Gauge, "portcullis_crypto_backend", &["backend"]),
];

/// A family, by its place in `FAMILIES`.
#[derive(Debug, Clone, Copy)]
enum Family {
    Config,
    Requests,
    Authenticators,
    Cache,
    JwksFetches,
    JwksReady,
    Callouts,
    CalloutDuration,
    CryptoBackend,
}

/// The host's id of each family, as `define` got them (`None` where the host refused one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Families([Option<u32>; FAMILIES.len()]);

impl Families {
    /// Defines every family with the host; called as a configuration loads, the only time a
    /// native host allows it.
    pub fn define(host: &impl Host) -> Families {
        let mut ids = [None; FAMILIES.len()];
        for (id, (kind, name, tags)) in ids.iter_mut().zip(FAMILIES) {
            *id = host.define_metric(kind, name, tags);
        }
        Families(ids)
    }

    fn id(&self, family: Family) -> Option<u32> {
        self.0.get(family as usize).copied().flatten()
    }
}

#[derive(Default)]
pub struct Metrics {
    families: Cell<Families>,
    published: RefCell<Published>,
    /// By cluster: a configuration names a few, so a scan is cheaper than hashing.
    calls: RefCell<Vec<ClusterCalls>>,
}

/// A stat's name with its tags encoded the way Istio does, for hosts without tagged stats.
pub fn encoded_name(name: &str, tags: &[&str], values: &[&str]) -> String {
    let mut s = String::with_capacity(64);
    for (k, v) in tags.iter().zip(values) {
        s.push_str(k);
        s.push_str("=.=");
        s.extend(v.chars().map(|c| if c == ';' { '_' } else { c }));
        s.push_str(";.;");
    }
    s.push_str(name);
    s
}

/// For a host whose stats carry no tags (proxy-wasm): the families it was given, and one stat
/// per family and tag values, defined by its encoded name the first time it is counted.
#[derive(Default)]
pub struct EncodedStats {
    families: RefCell<Vec<(MetricKind, String, Vec<String>)>>,
    series: RefCell<HashMap<String, u32>>,
}

impl EncodedStats {
    pub fn define(&self, kind: MetricKind, name: &str, tags: &[&str]) -> u32 {
        let mut families = self.families.borrow_mut();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let found = families
            .iter()
            .position(|(k, n, t)| *k == kind && n == name && *t == tags);
        let index = found.unwrap_or_else(|| {
            families.push((kind, name.to_string(), tags));
            families.len() - 1
        });
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    /// The host's id of family `family`'s stat for `values`; `define` defines it by name.
    pub fn series(
        &self,
        family: u32,
        values: &[&str],
        define: impl FnOnce(MetricKind, &str) -> Option<u32>,
    ) -> Option<u32> {
        let families = self.families.borrow();
        let (kind, name, tags) = families.get(usize::try_from(family).ok()?)?;
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let full = encoded_name(name, &tags, values);
        if let Some(id) = self.series.borrow().get(&full) {
            return Some(*id);
        }
        let id = define(*kind, &full)?;
        self.series.borrow_mut().insert(full, id);
        Some(id)
    }
}

impl Metrics {
    /// A worker's stats in families its process defined already.
    pub fn with_families(families: Families) -> Metrics {
        let metrics = Metrics::default();
        metrics.families.set(families);
        metrics
    }

    /// Defines the families (as a configuration loads).
    pub fn define(&self, host: &impl Host) {
        self.families.set(Families::define(host));
    }

    /// The family ids, for the workers of a process that defined them.
    pub fn families(&self) -> Families {
        self.families.get()
    }

    fn count(&self, host: &impl Host, family: Family, values: &[&str], by: u64) {
        if by == 0 {
            return;
        }
        if let Some(id) = self.families.get().id(family) {
            host.increment_metric(id, values, by);
        }
    }

    fn gauge(&self, host: &impl Host, family: Family, values: &[&str], value: u64) {
        if let Some(id) = self.families.get().id(family) {
            host.record_metric(id, values, value);
        }
    }

    /// A configuration was loaded or refused.
    pub fn configured(&self, host: &impl Host, loaded: bool) {
        let result = if loaded { "loaded" } else { "rejected" };
        self.count(host, Family::Config, &[result], 1);
    }

    /// Which crypto backend checks signatures: `portcullis_crypto_backend{backend}` is 1 for
    /// the one in use and 0 for the others.
    pub fn crypto_backend(&self, host: &impl Host, in_use: &str) {
        for backend in crate::jose::crypto::BACKENDS {
            self.gauge(
                host,
                Family::CryptoBackend,
                &[backend],
                u64::from(backend == in_use),
            );
        }
    }

    /// A callout's answer: counted by cluster and result (published later), its latency
    /// recorded: one host call per answer.
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
                calls.push(ClusterCalls {
                    cluster: cluster.to_string(),
                    counted: [0; 3],
                    published: [0; 3],
                });
                calls.len() - 1
            }
        };
        if let Some(n) = calls.get_mut(i).and_then(|c| c.counted.get_mut(outcome)) {
            *n += 1;
        }
        drop(calls);
        if let Some(id) = self.families.get().id(Family::CalloutDuration) {
            host.record_metric(id, &[cluster], elapsed_ms);
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
            self.count(host, Family::Requests, &[id, decision, status], n - before);
        }
        for ((handler, outcome), n) in vm.stats.authenticators() {
            let before = last.stats.authenticator_count(handler, outcome);
            let values = [handler, outcome.name()];
            self.count(host, Family::Authenticators, &values, n - before);
        }
        let cache = |this: &Self, cache: &str, result: &str, now: u64, before: u64| {
            this.count(
                host,
                Family::Cache,
                &[cache, result],
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
                let values = [c.cluster.as_str(), result];
                self.count(host, Family::Callouts, &values, n - *before);
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
                Family::JwksFetches,
                &[result],
                now.saturating_sub(before),
            );
        };
        jwks(self, "started", j.fetches, last.jwks.fetches);
        jwks(self, "failed", j.failures, last.jwks.failures);
        jwks(self, "adopted", j.adopted, last.jwks.adopted);
        if !filter.jwks_sources.is_empty() {
            self.gauge(host, Family::JwksReady, &[], u64::from(ready));
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
            super::encoded_name(
                "portcullis_requests_total",
                &["rule", "status"],
                &["a;b", "401"]
            ),
            "rule=.=a_b;.;status=.=401;.;portcullis_requests_total"
        );
    }
}
