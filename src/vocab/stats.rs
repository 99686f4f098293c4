//! What one VM counts for Envoy's stats: decisions by rule and status, authenticator outcomes,
//! and verified-token cache hits. Plain in-memory counters, so the request path makes no host
//! call for stats; the root context publishes the growth on its tick. Every key comes from the
//! configuration or a fixed set, so the maps stay as small as the configuration.

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
    /// Requests by rule and status (0 = forwarded): slot 0 is "no rule matched", slot `i + 1`
    /// rule `i`, each a short list of the statuses seen. Indexed, not hashed: this is bumped on
    /// every request.
    decisions: Vec<Vec<(u32, u64)>>,
    /// (handler name, outcome) → count, in the order first seen; a rule has a few.
    authenticators: Vec<(&'static str, Outcome, u64)>,
    pub token_hits: u64,
    pub token_misses: u64,
}

impl Stats {
    pub fn decision(&mut self, rule: Option<usize>, status: Option<u32>) {
        let slot = rule.map_or(0, |i| i + 1);
        if self.decisions.len() <= slot {
            self.decisions.resize_with(slot + 1, Vec::new);
        }
        let status = status.unwrap_or(0);
        if let Some(statuses) = self.decisions.get_mut(slot) {
            match statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += 1,
                None => statuses.push((status, 1)),
            }
        }
    }

    pub fn authenticator(&mut self, handler: &'static str, outcome: Outcome) {
        let seen = self
            .authenticators
            .iter_mut()
            .find(|(h, o, _)| *o == outcome && *h == handler);
        match seen {
            Some((.., n)) => *n += 1,
            None => self.authenticators.push((handler, outcome, 1)),
        }
    }

    /// ((rule, status), requests) for every pair counted; status 0 is forwarded.
    pub fn decisions(&self) -> impl Iterator<Item = ((Option<usize>, u32), u64)> + '_ {
        self.decisions
            .iter()
            .enumerate()
            .flat_map(|(slot, statuses)| {
                let rule = slot.checked_sub(1);
                statuses.iter().map(move |&(s, n)| ((rule, s), n))
            })
    }

    pub fn decisions_of(&self, rule: Option<usize>, status: u32) -> u64 {
        self.decisions
            .get(rule.map_or(0, |i| i + 1))
            .and_then(|s| s.iter().find(|(st, _)| *st == status))
            .map_or(0, |(_, n)| *n)
    }

    /// ((handler, outcome), count) in the order first counted.
    pub fn authenticators(&self) -> impl Iterator<Item = ((&'static str, Outcome), u64)> + '_ {
        self.authenticators.iter().map(|&(h, o, n)| ((h, o), n))
    }

    pub fn authenticator_count(&self, handler: &str, outcome: Outcome) -> u64 {
        self.authenticators()
            .find(|((h, o), _)| *h == handler && *o == outcome)
            .map_or(0, |(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_rule_status_and_handler() {
        let mut s = Stats::default();
        s.decision(Some(2), None);
        s.decision(Some(2), None);
        s.decision(Some(2), Some(401));
        s.decision(None, Some(404));
        s.authenticator("jwt", Outcome::NotResponsible);
        s.authenticator("anonymous", Outcome::Responsible);
        s.authenticator("jwt", Outcome::NotResponsible);
        assert_eq!(
            s.decisions().collect::<Vec<_>>(),
            [((None, 404), 1), ((Some(2), 0), 2), ((Some(2), 401), 1)]
        );
        assert_eq!(
            (s.decisions_of(Some(2), 0), s.decisions_of(Some(0), 0)),
            (2, 0)
        );
        assert_eq!(s.authenticator_count("jwt", Outcome::NotResponsible), 2);
        assert_eq!(
            s.authenticators()
                .map(|((h, _), n)| (h, n))
                .collect::<Vec<_>>(),
            [("jwt", 2), ("anonymous", 1)]
        );
    }
}
