//! What one VM counts for Envoy's stats: decisions by rule and status, authenticator outcomes,
//! and verified-token cache hits. Plain in-memory counters, so the request path makes no host
//! call for stats; the root context publishes the growth on its tick. Every key comes from the
//! configuration or a fixed set, so the maps stay as small as the configuration.

use std::collections::HashMap;

/// How one authenticator ended for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It authenticated the request.
    Responsible,
    NotResponsible,
    /// It refused the credentials (401, 403, 429).
    Rejected,
    /// It could not decide (its dependency failed, bad input, a bug): 4xx other than those, 5xx.
    Error,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Responsible => "responsible",
            Outcome::NotResponsible => "not_responsible",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// (rule index, status; 0 = forwarded) → requests. No rule matched: `None`.
    pub decisions: HashMap<(Option<usize>, u32), u64>,
    /// (handler name, outcome) → count.
    pub authenticators: HashMap<(&'static str, Outcome), u64>,
    pub token_hits: u64,
    pub token_misses: u64,
}

impl Stats {
    pub fn decision(&mut self, rule: Option<usize>, status: Option<u32>) {
        *self
            .decisions
            .entry((rule, status.unwrap_or(0)))
            .or_default() += 1;
    }

    pub fn authenticator(&mut self, handler: &'static str, outcome: Outcome) {
        *self.authenticators.entry((handler, outcome)).or_default() += 1;
    }
}
