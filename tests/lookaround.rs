//! Lookaround in `regexp` rules against a reference backtracking engine (fancy-regex, which
//! runs lookaround as Oathkeeper's regexp2 does): over generated patterns and paths, the same
//! match and the same capture groups. And the matcher stays linear on hostile subjects.

#[allow(dead_code)]
#[path = "../fuzz/targets/mod.rs"]
mod targets;

use fancy_regex::Regex;
use portcullis::rules::delimiters::{split, Part};
use portcullis::rules::{Pattern, PatternError, Strategy};
use std::time::Instant;
use targets::oracle;

#[path = "common/gen.rs"]
mod gen;

use gen::Gen;

fn oracle_captures(re: &Regex, subject: &str) -> Option<Vec<String>> {
    re.captures(subject).unwrap().map(|c| {
        c.iter()
            .skip(1)
            .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
            .collect()
    })
}

const ITEMS: &[&str] = &[
    ".", "[a-z]", "[^/]", "a", "d", "\\.", "/", "[0-9]", "n", "é",
];
const QUANTIFIERS: &[&str] = &["", "", "?", "*", "+"];
const LOOKS: &[&str] = &[
    "(?!admin)",
    "(?!admin$)",
    "(?!a|d)",
    "(?=a)",
    "(?=[a-z]+$)",
    "(?!.*/)",
    "(?!.*\\.\\.)",
    "(?=ad?m)",
    "(?<!a)",
    "(?<=/)",
    "(?<![0-9]+)",
    "(?<=a|dm)",
    "(?!)",
    "(?=)",
];
const LITERALS: &[&str] = &["", "", "http://h/", "/", "a", "users/", "."];
const TEXT: &[&str] = &[
    "a", "a", "d", "m", "n", "admin", "/", "x", ".", "..", "1", ">", ">", "é", "ad",
];

/// A `<…>` expression of items and lookarounds; a lookbehind's `(?<` opens a delimiter, as it
/// does in Oathkeeper, so the group needs a `>` more (which becomes part of the expression).
fn expression(g: &mut Gen) -> String {
    let mut expr = String::new();
    for _ in 0..(1 + g.next() % 4) {
        if g.next() % 3 == 0 {
            expr.push_str(g.pick(LOOKS));
        } else {
            expr.push_str(g.pick(ITEMS));
            expr.push_str(g.pick(QUANTIFIERS));
        }
    }
    let extra = expr.matches("(?<").count();
    format!("<{expr}>{}", ">".repeat(extra))
}

#[test]
fn lookaround_rules_answer_as_the_backtracking_engine() {
    let mut g = Gen(0x0001_007A_4EAD);
    let methods = vec!["GET".to_string()];
    let (mut patterns, mut refused, mut compared, mut matched, mut with_looks) = (0, 0, 0, 0, 0);
    for _ in 0..8000 {
        let mut url = String::new();
        for _ in 0..(1 + g.next() % 3) {
            url.push_str(g.pick(LITERALS));
            url.push_str(&expression(&mut g));
        }
        url.push_str(g.pick(LITERALS));
        let pattern = match Pattern::compile(Strategy::Regexp, &url, &methods) {
            Ok(p) => p,
            Err(PatternError::Unsupported(what)) => {
                // The only refusal: an unbounded body after unbounded text.
                assert!(what.contains("no length bound"), "{url}: {what}");
                refused += 1;
                continue;
            }
            Err(e) => panic!("{url}: {e}"),
        };
        patterns += 1;
        let looks = url.contains("(?");
        with_looks += usize::from(looks);
        let re = oracle(&url).unwrap();
        let parts = split(&url).unwrap();
        for _ in 0..25 {
            // Mostly the pattern's own text with random text for each expression, so many
            // subjects get past the literals.
            let mut subject = String::new();
            for part in &parts {
                match part {
                    Part::Literal(text) if g.next() % 10 != 0 => subject.push_str(text),
                    _ => {
                        for _ in 0..g.next() % 3 {
                            subject.push_str(g.pick(TEXT));
                        }
                    }
                }
            }
            let expected = oracle_captures(&re, &subject);
            assert_eq!(
                pattern.matches_url(&subject),
                expected.is_some(),
                "{url} on {subject:?}"
            );
            if let Some(groups) = expected {
                assert_eq!(pattern.captures(&subject), groups, "{url} on {subject:?}");
                matched += usize::from(looks);
            }
            compared += 1;
        }
    }
    eprintln!(
        "{patterns} patterns ({with_looks} with lookaround, {refused} refused), \
         {compared} subjects compared, {matched} lookaround matches"
    );
    assert!(
        patterns > 5000 && with_looks > 3500 && compared > 120_000 && matched > 2500,
        "{patterns} patterns ({with_looks} with lookaround, {refused} refused), \
         {compared} subjects compared, {matched} lookaround matches"
    );
}

#[test]
fn oathkeepers_own_lookahead_rule() {
    let methods = vec!["GET".to_string()];
    let p = Pattern::compile(
        Strategy::Regexp,
        "https://localhost/users/<(?!admin).*>",
        &methods,
    )
    .unwrap();
    assert!(p.matches("GET", "https://localhost/users/manager"));
    assert!(p.matches("GET", "https://localhost/users/"));
    assert!(!p.matches("GET", "https://localhost/users/admin"));
    assert!(!p.matches("GET", "https://localhost/users/administrator"));
    assert_eq!(
        p.captures("https://localhost/users/manager"),
        vec!["manager".to_string()]
    );
}

#[test]
fn what_stays_unsupported_is_a_load_error_that_says_so() {
    let methods = vec!["GET".to_string()];
    for (url, what) in [
        ("http://a/<(a)\\1>", "backreferences"),
        ("http://a/<(?!a)(x|y)>", "lookaround beside anything but"),
        ("http://a/<(?!(a)).*>", "capture group inside a lookaround"),
        ("http://a/<(?!a(?!b)).*>", "nested lookaround"),
        ("http://a/<(?!a)*x>", "quantified lookaround"),
        ("http://a/<.*>/<(?!.*x).*>", "no length bound"),
        ("http://a/<(?!\\bx).*>", "word boundary"),
    ] {
        let err = Pattern::compile(Strategy::Regexp, url, &methods).unwrap_err();
        assert!(
            err.to_string().contains(what),
            "{url}: {err} does not say {what}"
        );
    }
    // A bounded body is fine anywhere.
    assert!(Pattern::compile(Strategy::Regexp, "http://a/<.*>/<(?!admin).*>", &methods).is_ok());
}

/// Patterns that make a naive backtracker (or one without memory) take quadratic or
/// exponential time run in linear time: 200 000 characters would take minutes otherwise.
#[test]
fn hostile_subjects_stay_linear() {
    let methods = vec!["GET".to_string()];
    let subject = format!("http://a/{}", "a".repeat(200_000));
    for url in [
        "http://a/<.*.*.*(?!b).*.*x>",
        "http://a/<(?!.*b)[a-z]*[a-z]*[a-z]*y>",
        "http://a/<a*(?<!b)a*(?=a)a*a*z>>",
        "http://a/<.*(?<!b)a*(?<=a)b>>>",
    ] {
        let p = Pattern::compile(Strategy::Regexp, url, &methods).unwrap();
        let t = Instant::now();
        assert!(!p.matches_url(&subject), "{url}");
        assert!(
            t.elapsed().as_secs() < 20,
            "{url}: {:?} for 200 000 characters",
            t.elapsed()
        );
    }
}
