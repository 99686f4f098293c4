//! Access rules: pattern compilation for both strategies, path normalisation, and finding the
//! one rule a request matches.

pub mod delimiters;
pub mod glob;
pub mod path;
pub mod regexp;

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
    methods: Vec<String>,
    regex: Regex,
    /// The literal text before the first `<`: a rule whose prefix the subject lacks is skipped
    /// without running its expression.
    prefix: String,
    captures: bool,
}

impl Pattern {
    pub fn compile(
        strategy: Strategy,
        url: &str,
        methods: &[String],
    ) -> Result<Pattern, PatternError> {
        let regex = match strategy {
            Strategy::Regexp => regexp::compile(url)?,
            Strategy::Glob => glob::compile(url)?,
        };
        let prefix = url.split('<').next().unwrap_or_default().to_string();
        Ok(Pattern {
            methods: methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            regex,
            prefix,
            captures: strategy == Strategy::Regexp,
        })
    }

    fn matches(&self, method: &str, subject: &str) -> bool {
        self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            && subject.starts_with(&self.prefix)
            && self.regex.is_match(subject)
    }

    /// Every capture group after the whole match, in order; a group that did not take part is
    /// `""`, as with Go's `FindStringSubmatch`.
    pub fn captures(&self, subject: &str) -> Vec<String> {
        if !self.captures {
            return Vec::new();
        }
        self.regex
            .captures(subject)
            .map(|c| {
                c.iter()
                    .skip(1)
                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The outcome of matching a request against every rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    None,
    One(usize),
    Many,
}

/// Finds the single rule whose pattern matches; Oathkeeper has no precedence, so two matches
/// are an error, not a choice.
pub fn find(patterns: &[Pattern], method: &str, subject: &str) -> Found {
    let mut found = Found::None;
    for (i, p) in patterns.iter().enumerate() {
        if p.matches(method, subject) {
            if found != Found::None {
                return Found::Many;
            }
            found = Found::One(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(url: &str, methods: &[&str]) -> Pattern {
        let methods: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
        Pattern::compile(Strategy::Regexp, url, &methods).unwrap()
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
        let p = pat("https://localhost/users/<[0-9]+>", &["DELETE"]);
        let ps = [p];
        assert_eq!(
            find(&ps, "DELETE", "https://localhost/users/1234"),
            Found::One(0)
        );
        assert_eq!(
            find(&ps, "DELETE", "https://localhost/users/abcd"),
            Found::None
        );
        assert_eq!(
            ps[0].captures("https://localhost/users/1234"),
            vec!["1234".to_string()]
        );
    }
}
