//! Rule patterns and the matcher: `strategy-byte pattern \0 subject \0 method`. The indexed
//! matcher agrees with the pattern alone, and a match's capture groups come from the subject.

use portcullis::rules::{Found, Matcher, Pattern, Strategy};

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
    let found = m.find("GET", subject);
    assert_eq!(
        matches!(found, Found::One(0)),
        single,
        "index and pattern disagree on {url:?} / {subject:?}"
    );
    assert!(!matches!(found, Found::Many), "one rule matched twice");
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
