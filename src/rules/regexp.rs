//! The `regexp` matching strategy: literal text outside `<…>`, a regular expression inside, the
//! whole subject must match, and every group is a capture (ladon's `CompileRegex`).

use super::delimiters::{split, Part};
use super::PatternError;
use regex_lite::Regex;

pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let mut re = String::with_capacity(pattern.len() + 8);
    re.push('^');
    for part in split(pattern).map_err(|_| PatternError::Unbalanced)? {
        match part {
            Part::Literal(text) => re.push_str(&regex_lite::escape(text)),
            Part::Expr(expr) => {
                reject_unsupported(expr)?;
                re.push('(');
                re.push_str(expr);
                re.push(')');
            }
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| PatternError::Regex(e.to_string()))
}

/// Whether an expression of the pattern holds a lookaround, which regex-lite cannot run
/// (`Pattern::compile` sends those to `simple::Simple::compile_lookaround`).
pub fn has_lookaround(parts: &[Part<'_>]) -> bool {
    parts.iter().any(|part| match part {
        Part::Expr(expr) => ["(?=", "(?!", "(?<=", "(?<!"]
            .iter()
            .any(|look| expr.contains(look)),
        Part::Literal(_) => false,
    })
}

/// Oathkeeper's regexp2 engine backtracks; ours runs in linear time (lookaround in bounded
/// time, `simple.rs`), so backreferences cannot be expressed. Say so instead of a parser error.
pub fn reject_unsupported(expr: &str) -> Result<(), PatternError> {
    for look in ["(?=", "(?!", "(?<=", "(?<!"] {
        if expr.contains(look) {
            return Err(PatternError::Unsupported("lookaround"));
        }
    }
    reject_backreferences(expr)
}

pub fn reject_backreferences(expr: &str) -> Result<(), PatternError> {
    let bytes = expr.as_bytes();
    for (i, w) in bytes.windows(2).enumerate() {
        let escaped = i > 0 && bytes.get(i - 1) == Some(&b'\\');
        if w.first() == Some(&b'\\') && !escaped && w.get(1).is_some_and(|b| b.is_ascii_digit()) {
            return Err(PatternError::Unsupported("backreferences"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pattern: &str, subject: &str) -> Option<Vec<String>> {
        let re = compile(pattern).unwrap();
        re.captures(subject).map(|c| {
            c.iter()
                .skip(1)
                .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                .collect()
        })
    }

    #[test]
    fn ladon_capture_semantics() {
        assert_eq!(
            caps("<https|http>://localhost/<.*>", "http://localhost/user"),
            Some(vec!["http".into(), "user".into()])
        );
        assert_eq!(
            caps("urn:foo:<foo|bar>", "urn:foo:bar"),
            Some(vec!["bar".into()])
        );
        assert_eq!(
            caps("<(http|https)>://x", "https://x"),
            Some(vec!["https".into(), "https".into()])
        );
        assert_eq!(caps("urn:foo:<.?>", "urn:foo:user"), None);
    }

    #[test]
    fn literal_text_is_escaped_and_the_match_is_whole() {
        assert!(compile("https://mydomain.com/")
            .unwrap()
            .is_match("https://mydomain.com/"));
        assert!(!compile("https://mydomain.com/")
            .unwrap()
            .is_match("https://mydomainXcom/"));
        assert!(!compile("https://mydomain.com/")
            .unwrap()
            .is_match("https://mydomain.com/foo"));
        let digits = compile("http://mydomain.com/<[[:digit:]]+>").unwrap();
        assert!(digits.is_match("http://mydomain.com/123"));
        assert!(!digits.is_match("http://mydomain.com/abc"));
    }

    #[test]
    fn unsupported_syntax_is_named() {
        assert_eq!(
            compile("https://localhost/users/<(?!admin).*>").unwrap_err(),
            PatternError::Unsupported("lookaround")
        );
        assert_eq!(
            compile("http://x/<(a)\\1>").unwrap_err(),
            PatternError::Unsupported("backreferences")
        );
        assert_eq!(
            compile("http://x/<a").unwrap_err(),
            PatternError::Unbalanced
        );
        assert!(matches!(
            compile("http://x/<(>"),
            Err(PatternError::Regex(_))
        ));
    }
}
