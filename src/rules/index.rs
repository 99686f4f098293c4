//! Finding candidate rules without scanning them all. A rule whose scheme part cannot contain
//! `:` or `/` has a literal prefix starting at the host (`api.example.com/v1/`); it can only
//! match subjects whose host-and-path starts with that prefix. Rules are grouped by prefix, and a
//! request looks up each prefix length in use. Rules whose pattern cannot be indexed this way are
//! always candidates. Every candidate is still checked against its full expression.

use super::delimiters::{split, Part};
use super::Strategy;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Index {
    by_prefix: HashMap<String, Vec<usize>>,
    /// Distinct prefix lengths, ascending.
    lengths: Vec<usize>,
    unindexed: Vec<usize>,
}

/// The literal text a pattern's subjects must start with after `://`, if provable.
fn host_prefix(strategy: Strategy, pattern: &str) -> Option<String> {
    let parts = split(pattern).ok()?;
    let mut prefix = String::new();
    let mut after_scheme = false;
    for part in parts {
        match part {
            Part::Literal(text) if !after_scheme => {
                let (scheme, rest) = match text.split_once("://") {
                    Some(pair) => pair,
                    None => (text, ""),
                };
                if scheme.contains([':', '/']) {
                    return None;
                }
                if text.contains("://") {
                    after_scheme = true;
                    prefix.push_str(rest);
                }
            }
            Part::Expr(expr) if !after_scheme => {
                // The scheme part may only hold alternatives of letters: then it cannot match
                // the `://` of a path and shift where the host starts.
                let safe = |c: char| match strategy {
                    Strategy::Regexp => c.is_ascii_alphanumeric() || "|?()".contains(c),
                    Strategy::Glob => c.is_ascii_alphanumeric() || "{},".contains(c),
                };
                if !expr.chars().all(safe) {
                    return None;
                }
            }
            Part::Literal(text) => prefix.push_str(text),
            Part::Expr(_) => break,
        }
    }
    // As written: patterns match case-sensitively (the subject's host is already lowercase), and
    // lowercasing here would hide a rule with an uppercase path from its own subjects.
    (after_scheme && !prefix.is_empty()).then_some(prefix)
}

impl Index {
    pub fn build<'a>(strategy: Strategy, urls: impl Iterator<Item = &'a str>) -> Index {
        let mut index = Index::default();
        for (i, url) in urls.enumerate() {
            match host_prefix(strategy, url) {
                Some(p) => {
                    if !index.lengths.contains(&p.len()) {
                        index.lengths.push(p.len());
                    }
                    index.by_prefix.entry(p).or_default().push(i);
                }
                None => index.unindexed.push(i),
            }
        }
        index.lengths.sort_unstable();
        index
    }

    /// Calls `f` with every rule that could match `subject` (`scheme://host/path`).
    pub fn candidates(&self, subject: &str, mut f: impl FnMut(usize) -> bool) {
        for &i in &self.unindexed {
            if !f(i) {
                return;
            }
        }
        let Some((_, rest)) = subject.split_once("://") else {
            return;
        };
        for &len in &self.lengths {
            let Some(prefix) = rest.get(..len) else { break };
            for &i in self.by_prefix.get(prefix).map_or(&[][..], Vec::as_slice) {
                if !f(i) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = |s| host_prefix(Strategy::Regexp, s);
        assert_eq!(
            p("http<s?>://echo.example.com</?.*>"),
            Some("echo.example.com".into())
        );
        assert_eq!(p("https://api.test/v1/<.*>"), Some("api.test/v1/".into()));
        assert_eq!(p("<https|http>://host.test/"), Some("host.test/".into()));
        assert_eq!(p("http://a.test/Foo/<.*>"), Some("a.test/Foo/".into()));
        assert_eq!(
            p("<.*>://host/"),
            None,
            "the scheme part could swallow a path's ://"
        );
        assert_eq!(p("http://<[a-z]+>.test/"), None, "no literal host");
        assert_eq!(p("urn:foo:<.*>"), None);
        assert_eq!(
            host_prefix(Strategy::Glob, "<{http,https}>://a.test/<**>"),
            Some("a.test/".into())
        );
        assert_eq!(host_prefix(Strategy::Glob, "<?>ttp://a.test/"), None);
    }

    #[test]
    fn candidates_cover_every_rule_that_can_match() {
        let urls = [
            "http://a.test/x/<.*>",
            "http://a.test/<.*>",
            "<.*>://b/",
            "http://ab.test/",
        ];
        let index = Index::build(Strategy::Regexp, urls.iter().copied());
        let mut seen = Vec::new();
        index.candidates("http://a.test/x/1", |i| {
            seen.push(i);
            true
        });
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2]);
    }
}
