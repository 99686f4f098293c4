//! Ory fosite's scope strategies, which decide whether the scopes a token grants cover a
//! required scope.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Scopes are not checked; requiring one is a configuration the check refuses.
    None,
    Exact,
    /// `foo` grants `foo.bar` and `foo.bar.baz`.
    Hierarchic,
    /// `foo.*` grants `foo.bar`; `*` matches one non-empty segment.
    Wildcard,
}

impl Strategy {
    pub fn parse(name: &str) -> Option<Strategy> {
        Some(match name {
            "none" | "" => Strategy::None,
            "exact" => Strategy::Exact,
            "hierarchic" => Strategy::Hierarchic,
            "wildcard" => Strategy::Wildcard,
            _ => return None,
        })
    }

    /// Whether `granted` covers `needle`.
    pub fn grants(self, granted: &[&str], needle: &str) -> bool {
        match self {
            Strategy::None => false,
            Strategy::Exact => granted.contains(&needle),
            Strategy::Hierarchic => granted.iter().any(|g| hierarchic(g, needle)),
            Strategy::Wildcard => granted.iter().any(|g| wildcard(g, needle)),
        }
    }
}

fn hierarchic(granted: &str, needle: &str) -> bool {
    if granted == needle {
        return true;
    }
    if granted.len() > needle.len() {
        return false;
    }
    // fosite: every segment of the granted scope is a prefix segment of the needle.
    let mut have = granted.split('.');
    for want in needle.split('.') {
        match have.next() {
            None => return true,
            Some(h) if h != want => return false,
            Some(_) => {}
        }
    }
    false
}

fn wildcard(matcher: &str, needle: &str) -> bool {
    let needle_parts: Vec<&str> = needle.split('.').collect();
    let matcher_parts: Vec<&str> = matcher.split('.').collect();
    if matcher_parts.len() > needle_parts.len() {
        return false;
    }
    let last = matcher_parts.len().saturating_sub(1);
    for (k, (m, n)) in matcher_parts.iter().zip(&needle_parts).enumerate() {
        // A shorter matcher only grants longer needles when it ends in `*`.
        if k == last && matcher_parts.len() != needle_parts.len() && *m != "*" {
            return false;
        }
        if *m == "*" && !n.is_empty() {
            continue;
        }
        if m != n {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::Strategy;

    #[test]
    fn fosite_tables() {
        let h = Strategy::Hierarchic;
        assert!(h.grants(&["foo"], "foo"));
        assert!(h.grants(&["foo"], "foo.bar"));
        assert!(h.grants(&["foo.bar"], "foo.bar.baz"));
        assert!(!h.grants(&["foo.bar"], "foo"));
        assert!(!h.grants(&["foo.bar"], "foo.baz"));
        assert!(!h.grants(&["fo"], "foo"));
        assert!(!h.grants(&[], "foo"));

        let e = Strategy::Exact;
        assert!(e.grants(&["foo", "bar"], "bar"));
        assert!(!e.grants(&["foo"], "foo.bar"));

        let w = Strategy::Wildcard;
        assert!(w.grants(&["foo.*"], "foo.bar"));
        assert!(w.grants(&["foo.*"], "foo.bar.baz"));
        assert!(w.grants(&["foo.*.baz"], "foo.bar.baz"));
        assert!(!w.grants(&["foo.*.baz"], "foo.bar.qux"));
        assert!(!w.grants(&["foo.*"], "foo"));
        assert!(!w.grants(&["foo.*"], "foo."));
        assert!(w.grants(&["*"], "foo"));
        assert!(w.grants(&["foo"], "foo"));
        assert!(!w.grants(&["foo"], "foo.bar"));
        assert!(!w.grants(&["foo.bar"], "foo"));

        assert!(!Strategy::None.grants(&["foo"], "foo"));
    }
}
