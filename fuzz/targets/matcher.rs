//! Rule patterns and the matcher: `strategy-byte pattern \0 subject \0 method`. The indexed
//! matcher agrees with the pattern alone, its groups are the pattern's own captures, and a
//! match's capture groups come from the subject.
//! A pattern with lookaround answers as a backtracking engine (fancy-regex) does, captures
//! included, on ASCII subjects (where `\d`, `\w` and `\s` mean the same to both).

use portcullis::rules::delimiters::{split, Part};
use portcullis::rules::regexp::has_lookaround;
use portcullis::rules::{Found, Matcher, Pattern, Strategy};

/// The pattern as ladon builds it for regexp2 (literal text escaped, each `<…>` a group, the
/// whole subject), in the reference engine. `tests/lookaround.rs` uses it too.
pub fn oracle(url: &str) -> Option<fancy_regex::Regex> {
    let parts = split(url).ok()?;
    let mut re = String::from("^");
    for part in parts {
        match part {
            Part::Literal(text) => re.push_str(&fancy_regex::escape(text)),
            Part::Expr(expr) => {
                re.push('(');
                re.push_str(expr);
                re.push(')');
            }
        }
    }
    re.push('$');
    fancy_regex::Regex::new(&re).ok()
}

pub fn matcher(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let strategy = if first & 1 == 0 {
        Strategy::Regexp
    } else {
        Strategy::Glob
    };
    let f = super::fields(rest, 3);
    let (url, subject, method) = (&f[0], &f[1], &f[2]);
    let methods = vec![method.clone(), "GET".to_string()];
    let Ok(pattern) = Pattern::compile(strategy, url, &methods) else {
        return;
    };
    let single = pattern.matches("GET", subject);
    let m = Matcher::new(strategy, vec![pattern.clone()], [url.as_str()].into_iter());
    let (found, captures) = m.locate("GET", subject);
    assert_eq!(
        matches!(found, Found::One(0)),
        single,
        "index and pattern disagree on {url:?} / {subject:?}"
    );
    // The groups of the one search that matched are the pattern's own captures.
    let own = if single {
        pattern.captures(subject)
    } else {
        Vec::new()
    };
    assert_eq!(captures, own, "{url:?} on {subject:?}: locate's groups");
    assert!(!matches!(found, Found::Many), "one rule matched twice");
    let looks = split(url).is_ok_and(|parts| has_lookaround(&parts));
    let compare = looks && strategy == Strategy::Regexp && subject.is_ascii();
    if let Some(re) = oracle(url).filter(|_| compare) {
        // An engine error is its backtracking limit: no answer to compare.
        if let Ok(caps) = re.captures(subject) {
            let expected = caps.map(|c| {
                c.iter()
                    .skip(1)
                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(
                single.then(|| pattern.captures(subject)),
                expected,
                "{url:?} on {subject:?}: the backtracking engine answers otherwise"
            );
        }
    }
    if single && strategy == Strategy::Regexp {
        for c in pattern.captures(subject) {
            assert!(
                subject.contains(c.as_str()),
                "capture {c:?} not in {subject:?}"
            );
        }
    }
    // A method that is not listed never matches, whatever the subject.
    if !method.trim().eq_ignore_ascii_case("PATCH") {
        assert!(
            !pattern.matches("PATCH", subject),
            "{method:?} let PATCH through"
        );
    }
}
