//! The root-context logic: loading the configuration, and the background work of a VM (JWKS
//! fetches, and polling for other VMs' session answers, from the tick), through a `Host`.

use super::host::Host;
use super::http::Loaded;
use super::in_flight::InFlight;
use super::metrics::Metrics;
use crate::cache::jwks::{JwksStore, MAX_JWKS_BYTES};
use crate::cache::session::{SessionCache, POLL_TICK_MS};
use crate::jose::crypto::Backend;
use crate::pipeline::Shared;
use crate::vocab::callout::CalloutResult;
use crate::vocab::log::LogLevel;
use std::rc::Rc;
use std::sync::Arc;

/// How often the root context ticks when it has key sets to keep fresh. Requests waiting for
/// keys wait at most this long before their fetch starts.
pub const TICK_MS: u64 = 100;
/// Otherwise it ticks only to publish stats.
pub const STATS_TICK_MS: u64 = 1_000;

#[derive(Default)]
pub struct RootFilter {
    loaded: Option<Loaded>,
    /// JWKS fetches in flight, by source index.
    pending: InFlight<usize>,
    metrics: Rc<Metrics>,
    /// The proxy's workers are threads of this process (a native build): each configuration's
    /// session cache and key sets are made once, here, for all of them (`Loaded::shared`).
    threads: bool,
}

impl RootFilter {
    /// The root of a process whose workers are threads sharing its caches.
    pub fn for_threads() -> RootFilter {
        RootFilter {
            threads: true,
            ..RootFilter::default()
        }
    }

    pub fn loaded(&self) -> Option<&Loaded> {
        self.loaded.as_ref()
    }

    /// Loads a configuration. On failure the previous one is dropped too, so requests are
    /// refused rather than served by rules the operator replaced.
    pub fn configure(&mut self, bytes: &[u8], host: &impl Host) -> bool {
        self.pending.clear();
        self.metrics.restart();
        let result = crate::filter::load(bytes);
        self.metrics.define(host);
        self.metrics.configured(host, result.is_ok());
        match result {
            Ok(filter) => {
                host.log(
                    LogLevel::Info,
                    &format!(
                        "portcullis: configuration loaded: {} rules, {} JWKS URLs",
                        filter.rules.len(),
                        filter.jwks_sources.len()
                    ),
                );
                JwksStore::prepare(&filter.jwks_sources, host);
                if !self.threads {
                    // A process-wide session cache meets no other VM in shared data.
                    SessionCache::prepare(host);
                }
                filter
                    .state_key_names()
                    .for_each(|k| host.declare_filter_state(k));
                if !filter.jwks_sources.is_empty() {
                    host.log(
                        LogLevel::Info,
                        "portcullis: not ready: rules with jwt wait for the first JWKS fetch",
                    );
                }
                let metrics = Rc::clone(&self.metrics);
                let loaded = if self.threads {
                    let shared = Shared::new(&filter);
                    Loaded::sharing(Arc::new(filter), shared, metrics)
                } else {
                    Loaded::with_metrics(filter, metrics)
                };
                self.choose_crypto(host, &loaded);
                self.loaded = Some(loaded);
                host.set_tick_period(self.tick_period_ms());
                true
            }
            Err(e) => {
                host.log(
                    LogLevel::Error,
                    &format!("portcullis: configuration refused: {e}"),
                );
                self.loaded = None;
                host.set_tick_period(0);
                false
            }
        }
    }

    /// Probes the host's crypto once per configuration, and tells which backend won.
    fn choose_crypto(&self, host: &impl Host, loaded: &Loaded) {
        // Turned off, the host is not even probed.
        let on = loaded.filter.host_crypto;
        let (crypto, why) = if on {
            host.crypto()
        } else {
            (Backend::rust(), None)
        };
        let message = match &why {
            None if !on => {
                "portcullis: signatures: rust backend (envoy.host_crypto is false)".into()
            }
            None => format!("portcullis: signatures: {} backend", crypto.name()),
            Some(e) if e.is_not_found() => format!(
                "portcullis: signatures: {} backend (the host has no verify_signature)",
                crypto.name()
            ),
            Some(e) => format!("portcullis: signatures: {} backend ({e})", crypto.name()),
        };
        let level = match &why {
            Some(e) if !e.is_not_found() => LogLevel::Warn,
            _ => LogLevel::Info,
        };
        host.log(level, &message);
        self.metrics.crypto_backend(host, crypto.name());
        loaded.vm.borrow_mut().jwks.get().crypto = crypto;
    }

    /// The tick period the loaded configuration needs; 0 turns ticking off. While requests wait
    /// on another VM's session call, `POLL_TICK_MS`.
    pub fn tick_period_ms(&self) -> u64 {
        match &self.loaded {
            Some(l) if l.vm.borrow().authn.sessions.with(SessionCache::polling) => POLL_TICK_MS,
            Some(l) if !l.filter.jwks_sources.is_empty() => TICK_MS,
            Some(_) => STATS_TICK_MS,
            None => 0,
        }
    }

    pub fn on_tick(&mut self, host: &impl Host) {
        let Some(loaded) = &self.loaded else { return };
        let was_ready = loaded.vm.borrow().jwks.with(JwksStore::ready);
        self.metrics
            .publish(host, &loaded.filter, &loaded.vm.borrow());
        let (calls, wake) = loaded.vm.borrow_mut().jwks.get().on_tick(
            &loaded.filter.jwks_sources,
            host.now_ms(),
            host,
        );
        let mut failed = Vec::new();
        if !was_ready && loaded.vm.borrow().jwks.with(JwksStore::ready) {
            host.log(
                LogLevel::Info,
                "portcullis: ready: every JWKS has been fetched",
            );
        }
        for (source, callout) in calls {
            if !self.pending.send(host, &callout, source) {
                failed.push(source);
            }
        }
        wake.into_iter().for_each(|id| host.wake(id));
        let polling = loaded
            .vm
            .borrow()
            .authn
            .sessions
            .with(SessionCache::polling);
        if polling {
            let wake = loaded
                .vm
                .borrow_mut()
                .authn
                .sessions
                .get()
                .poll(host.now_ms(), host);
            wake.into_iter().for_each(|id| host.wake(id));
            if !loaded
                .vm
                .borrow()
                .authn
                .sessions
                .with(SessionCache::polling)
            {
                host.set_tick_period(self.tick_period_ms());
            }
        }
        for source in failed {
            self.fetched(host, source, CalloutResult::Failed);
        }
    }

    pub fn on_callout_response(
        &mut self,
        host: &impl Host,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let sizes = (num_headers, body_size);
        let Some((source, result)) =
            self.pending
                .answer(host, Some(&self.metrics), token, sizes, MAX_JWKS_BYTES)
        else {
            return;
        };
        self.fetched(host, source, result);
    }

    fn fetched(&self, host: &impl Host, source: usize, result: CalloutResult) {
        let Some(loaded) = &self.loaded else { return };
        let sources = &loaded.filter.jwks_sources;
        if !matches!(result, CalloutResult::Response { status: 200, .. }) {
            let url = sources.get(source).map_or("?", |s| s.url.as_str());
            host.log(
                LogLevel::Warn,
                &format!("JWKS fetch from {url} failed; keeping the keys we have"),
            );
        }
        let wake = loaded.vm.borrow_mut().jwks.get().on_fetched(
            sources,
            source,
            result,
            host.now_ms(),
            host,
        );
        wake.into_iter().for_each(|id| host.wake(id));
    }
}
