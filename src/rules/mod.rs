//! Access rules: pattern compilation for both strategies, path normalisation, and finding the
//! one rule a request matches.

pub mod delimiters;
pub mod glob;
pub mod index;
pub mod lookaround;
pub mod path;
pub mod regexp;
pub mod simple;

use regex_lite::Regex;

/// `access_rules.matching_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Regexp,
    Glob,
}

/// Why a `match.url` pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    Unbalanced,
    /// A regular-expression feature the linear-time engine cannot run.
    Unsupported(&'static str),
    Regex(String),
    Glob,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::Unbalanced => f.write_str("unbalanced < > delimiters"),
            PatternError::Unsupported(what) => write!(
                f,
                "{what} is not supported (the regular-expression engine runs in linear time); \
                 rewrite the pattern or split the rule"
            ),
            PatternError::Regex(e) => write!(f, "invalid regular expression: {e}"),
            PatternError::Glob => f.write_str("invalid glob: unclosed [ or {, or a trailing \\"),
        }
    }
}

/// One rule's compiled `match`.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// `match.url` as written, for tools that explain matching.
    url: String,
    methods: Vec<String>,
    /// `None` for a pattern with lookaround, which only `simple` runs.
    regex: Option<Regex>,
    /// The literal text before the first `<`: a rule whose prefix the subject lacks is skipped
    /// without running its expression.
    prefix: String,
    captures: bool,
    /// The same pattern as a fast matcher, when its expressions allow one.
    simple: Option<simple::Simple>,
}

impl Pattern {
    pub fn compile(
        strategy: Strategy,
        url: &str,
        methods: &[String],
    ) -> Result<Pattern, PatternError> {
        let (regex, simple) = match strategy {
            Strategy::Regexp => {
                let parts = delimiters::split(url).map_err(|_| PatternError::Unbalanced)?;
                if regexp::has_lookaround(&parts) {
                    for part in &parts {
                        if let delimiters::Part::Expr(expr) = part {
                            regexp::reject_backreferences(expr)?;
                        }
                    }
                    (None, Some(simple::Simple::compile_lookaround(&parts)?))
                } else {
                    (Some(regexp::compile(url)?), simple::Simple::compile(&parts))
                }
            }
            Strategy::Glob => (Some(glob::compile(url)?), None),
        };
        let prefix = url.split('<').next().unwrap_or_default().to_string();
        Ok(Pattern {
            url: url.to_string(),
            methods: methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            regex,
            prefix,
            captures: strategy == Strategy::Regexp,
            simple,
        })
    }

    pub fn matches(&self, method: &str, subject: &str) -> bool {
        self.allows(method) && self.matches_url(subject)
    }

    fn allows(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }

    /// Whether `subject` matches, whatever the method.
    pub fn matches_url(&self, subject: &str) -> bool {
        self.search(subject, &mut Vec::new()) != Searched::No
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Uppercase.
    pub fn methods(&self) -> &[String] {
        &self.methods
    }

    /// Runs the fast matcher when there is one (its verdict comes with the groups' byte ranges
    /// in `spans`), else the regular expression; a subject without the literal prefix is not
    /// searched at all.
    fn search(&self, subject: &str, spans: &mut Vec<(usize, usize)>) -> Searched {
        if !subject.starts_with(&self.prefix) {
            return Searched::No;
        }
        if let Some(s) = &self.simple {
            match s.search(subject, spans) {
                Ok(true) => return Searched::Spans,
                Ok(false) => return Searched::No,
                Err(_) => {}
            }
        }
        match self.regex.as_ref().is_some_and(|r| r.is_match(subject)) {
            true => Searched::Matched,
            false => Searched::No,
        }
    }

    /// Every capture group after the whole match, in order; a group that did not take part is
    /// `""`, as with Go's `FindStringSubmatch`.
    pub fn captures(&self, subject: &str) -> Vec<String> {
        let mut spans = Vec::new();
        match self.search(subject, &mut spans) {
            Searched::No => Vec::new(),
            found => self.captures_after(found, subject, &spans),
        }
    }

    /// The capture groups of a match `search` found: read from its spans when the fast
    /// matcher ran, so the pattern runs once; a second pass only for the regular expression.
    fn captures_after(
        &self,
        found: Searched,
        subject: &str,
        spans: &[(usize, usize)],
    ) -> Vec<String> {
        if !self.captures {
            return Vec::new();
        }
        if found == Searched::Spans {
            return spans
                .iter()
                .map(|&(a, b)| subject.get(a..b).unwrap_or_default().to_string())
                .collect();
        }
        self.regex
            .as_ref()
            .and_then(|r| r.captures(subject))
            .map(|c| {
                c.iter()
                    .skip(1)
                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How a pattern met a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Searched {
    No,
    /// Matched by the fast matcher, which left the groups' spans.
    Spans,
    /// Matched by the regular expression, which only said yes.
    Matched,
}

/// What rules are matched against: scheme, `://`, the host lowercase (host names are
/// case-insensitive and Envoy routes them so), the normalised path; never the query.
pub fn subject(scheme: &str, authority: &str, path: &str) -> String {
    let mut subject = String::with_capacity(scheme.len() + authority.len() + path.len() + 3);
    subject.push_str(scheme);
    subject.push_str("://");
    subject.push_str(authority);
    subject.push_str(path);
    if let Some(host) = subject.get_mut(scheme.len() + 3..scheme.len() + 3 + authority.len()) {
        host.make_ascii_lowercase();
    }
    subject
}

/// The outcome of matching a request against every rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    None,
    One(usize),
    Many,
}

/// Every rule's compiled pattern, indexed for lookup.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    index: index::Index,
}

impl Matcher {
    /// `urls` are the patterns as written, in the order of `patterns`.
    pub fn new<'a>(
        strategy: Strategy,
        patterns: Vec<Pattern>,
        urls: impl Iterator<Item = &'a str>,
    ) -> Matcher {
        Matcher {
            index: index::Index::build(strategy, urls),
            patterns,
        }
    }

    /// Finds the single rule whose pattern matches; Oathkeeper has no precedence, so two
    /// matches are an error, not a choice.
    pub fn find(&self, method: &str, subject: &str) -> Found {
        self.search(method, subject).0
    }

    /// As `find`, with the matching rule's capture groups. Each candidate's pattern runs once:
    /// the groups come from the search that matched.
    pub fn locate(&self, method: &str, subject: &str) -> (Found, Vec<String>) {
        let (found, searched, spans) = self.search(method, subject);
        let captures = match found {
            Found::One(i) => self
                .patterns
                .get(i)
                .map(|p| p.captures_after(searched, subject, &spans))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        (found, captures)
    }

    /// Every candidate searched once; with the first match, how it matched and its spans.
    fn search(&self, method: &str, subject: &str) -> (Found, Searched, Vec<(usize, usize)>) {
        let mut found = Found::None;
        let (mut spans, mut first) = (Vec::new(), (Searched::No, Vec::new()));
        self.index.candidates(subject, |i| {
            let Some(p) = self.patterns.get(i) else {
                return true;
            };
            let searched = match p.allows(method) {
                true => p.search(subject, &mut spans),
                false => Searched::No,
            };
            if searched == Searched::No {
                return true;
            }
            found = match found {
                Found::None => {
                    first = (searched, std::mem::take(&mut spans));
                    Found::One(i)
                }
                _ => Found::Many,
            };
            found != Found::Many
        });
        (found, first.0, first.1)
    }

    pub fn get(&self, rule: usize) -> Option<&Pattern> {
        self.patterns.get(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(url: &str, methods: &[&str]) -> (Pattern, String) {
        let methods: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
        (
            Pattern::compile(Strategy::Regexp, url, &methods).unwrap(),
            url.to_string(),
        )
    }

    fn find<const N: usize>(ps: &[(Pattern, String); N], method: &str, subject: &str) -> Found {
        let patterns = ps.iter().map(|(p, _)| p.clone()).collect();
        Matcher::new(
            Strategy::Regexp,
            patterns,
            ps.iter().map(|(_, u)| u.as_str()),
        )
        .find(method, subject)
    }

    #[test]
    fn methods_match_case_insensitively_and_empty_never_matches() {
        let ps = [
            pat("http://a/<.*>", &["get", "MKCOL"]),
            pat("http://b/<.*>", &[]),
        ];
        assert_eq!(find(&ps, "GET", "http://a/x"), Found::One(0));
        assert_eq!(find(&ps, "mkcol", "http://a/x"), Found::One(0));
        assert_eq!(find(&ps, "POST", "http://a/x"), Found::None);
        assert_eq!(find(&ps, "GET", "http://b/x"), Found::None);
    }

    #[test]
    fn two_matches_are_many() {
        let ps = [pat("http://a/<.*>", &["GET"]), pat("http://a/x", &["GET"])];
        assert_eq!(find(&ps, "GET", "http://a/x"), Found::Many);
        assert_eq!(find(&ps, "GET", "http://a/y"), Found::One(0));
    }

    #[test]
    fn users_rule_from_oathkeeper_tests() {
        let ps = [pat("https://localhost/users/<[0-9]+>", &["DELETE"])];
        assert_eq!(
            find(&ps, "DELETE", "https://localhost/users/1234"),
            Found::One(0)
        );
        assert_eq!(
            find(&ps, "DELETE", "https://localhost/users/abcd"),
            Found::None
        );
        assert_eq!(
            ps[0].0.captures("https://localhost/users/1234"),
            vec!["1234".to_string()]
        );
    }
}
