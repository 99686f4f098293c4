//! Property tests without a framework: a seeded generator feeds hostile strings to the path
//! normaliser, the matcher and the template engine. None may panic, and normalising twice
//! changes nothing.

use portcullis::rules::path::normalize;
use portcullis::rules::{Found, Matcher, Pattern, Strategy};
use portcullis::template::{Object, Template, Value};

#[path = "common/gen.rs"]
mod gen;

use gen::Gen;

const PATH_PIECES: &[&str] = &[
    "/", "//", ".", "..", "a", "%2e", "%2E", "%2f", "%25", "%", "%zz", "%c3%a9", "%ff", "\\", ";",
    "?", "#", "%00", " ", "é", "~", "%3F", "*", "+", "=", "&",
];

#[test]
fn normalisation_never_panics_and_is_idempotent() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let path = format!("/{}", g.string(PATH_PIECES, 24));
        let Ok(first) = normalize(&path) else {
            continue;
        };
        let forwarded = first.rewrite.clone().unwrap_or_else(|| path.clone());
        let second = normalize(&forwarded)
            .unwrap_or_else(|e| panic!("{path:?} forwarded as {forwarded:?} is refused: {e}"));
        assert_eq!(second.path, first.path, "{path:?}");
        assert_eq!(
            second.rewrite, None,
            "{path:?} → {forwarded:?} is not stable"
        );
        assert!(
            !first.path.contains("/../") && !first.path.contains("//"),
            "{path:?}"
        );
    }
}

const PATTERN_PIECES: &[&str] = &[
    "<", ">", "<.*>", "<*>", "<**>", "[", "]", "{", "}", ",", "(", ")", "?", "*", "\\", "a", ".",
    "/", "http://", "|", "+", "!", "<[a-z]+>", "$", "^",
];

#[test]
fn pattern_compilation_and_matching_never_panic() {
    let mut g = Gen(42);
    let methods = vec!["GET".to_string()];
    for _ in 0..5_000 {
        let url = g.string(PATTERN_PIECES, 12);
        for strategy in [Strategy::Regexp, Strategy::Glob] {
            if let Ok(p) = Pattern::compile(strategy, &url, &methods) {
                let subject = g.string(PATH_PIECES, 10);
                let m = Matcher::new(strategy, vec![p.clone()], [url.as_str()].into_iter());
                let _ = m.find("GET", &subject);
                let _ = p.captures(&subject);
            }
        }
    }
}

struct Data(serde_json::Value);

impl Object for Data {
    fn field(&self, name: &str) -> Option<Value<'_>> {
        match name {
            "Extra" => Some(Value::Json(&self.0)),
            "Subject" => Some(Value::Str("s".into())),
            _ => None,
        }
    }
    fn method<'a>(
        &'a self,
        _: &str,
        _: &[Value<'a>],
    ) -> Option<Result<Value<'a>, portcullis::template::ExecError>> {
        None
    }
    fn display(&self, out: &mut String) {
        out.push_str("data");
    }
    fn type_name(&self) -> &'static str {
        "data"
    }
}

const TEMPLATE_PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{-",
    "-}}",
    " ",
    ".",
    ".Extra",
    ".a",
    ".b",
    ".Subject",
    "print",
    "printIndex",
    "index",
    "join",
    "default",
    "|",
    "(",
    ")",
    "\"x\"",
    "`r`",
    "1",
    "-1",
    "if",
    "else",
    "end",
    "range",
    "with",
    "eq",
    "len",
    "toJson",
    "$",
    "nil",
    "true",
    "/*",
    "*/",
    "text",
];

#[test]
fn templates_never_panic() {
    let mut g = Gen(7);
    let data = Data(serde_json::json!({"a": {"b": [1, "two", null]}, "n": 1.5}));
    let mut compiled = 0;
    for _ in 0..20_000 {
        let src = g.string(TEMPLATE_PIECES, 14);
        if let Ok(t) = Template::compile(&src) {
            compiled += 1;
            let _ = t.render(&data);
        }
    }
    assert!(
        compiled > 1_000,
        "the generator should produce valid templates too ({compiled})"
    );
}

/// Found by fuzzing (`fuzz/regressions/template/add-overflows-int64`): sprig's `add`, `sub` and
/// `mul` are Go int64 arithmetic, which wraps; ours wrapped in release and trapped in debug.
#[test]
fn integer_arithmetic_wraps_like_go() {
    let data = Data(serde_json::json!({}));
    let max = i64::MAX;
    for (src, want) in [
        (format!("{{{{ add {max} 1 }}}}"), i64::MIN.to_string()),
        (format!("{{{{ sub -{max} 2 }}}}"), max.to_string()),
        (format!("{{{{ mul {max} 2 }}}}"), "-2".to_string()),
        ("{{ add 1 2 3 }}".to_string(), "6".to_string()),
    ] {
        let t = Template::compile(&src).unwrap();
        assert_eq!(t.render(&data).unwrap(), want, "{src}");
    }
}

/// Sprig's `int` goes through spf13/cast: strings are Go's `ParseInt(s, 0, 64)` after an
/// all-zero fraction is dropped, and anything cast cannot read is 0 (the request goes on).
#[test]
fn sprig_int_reads_strings_as_cast_does() {
    let data = Data(serde_json::json!({"s": "0x1F", "t": true, "f": -2.9}));
    for (arg, want) in [
        ("\"42\"", 42),
        ("\"+42\"", 42),
        ("\"-42\"", -42),
        ("\"0x10\"", 16),
        ("\"0X10\"", 16),
        ("\"0o17\"", 15),
        ("\"017\"", 15),
        ("\"0b101\"", 5),
        ("\"0\"", 0),
        ("\"1_000\"", 1000),
        ("\"0x_1f\"", 31),
        ("\"0_7\"", 7),
        ("\"12.00\"", 12),
        ("\"-3.0\"", -3),
        ("\"9223372036854775807\"", i64::MAX),
        ("\"-9223372036854775808\"", i64::MIN),
        // cast errors, which sprig turns into 0
        ("\"9223372036854775808\"", 0),
        ("\"1.5\"", 0),
        ("\"12.\"", 0),
        ("\" 7\"", 0),
        ("\"08\"", 0),
        ("\"0x\"", 0),
        ("\"_1\"", 0),
        ("\"1__0\"", 0),
        ("\"1_\"", 0),
        ("\"\"", 0),
        ("\"-\"", 0),
        ("\"seven\"", 0),
        (".Extra.s", 31),
        (".Extra.t", 1),
        ("false", 0),
        (".Extra.f", -2),
        (".Extra.missing", 0),
    ] {
        let src = format!("{{{{ int {arg} }}}}");
        let t = Template::compile(&src).unwrap();
        assert_eq!(t.render(&data).unwrap(), want.to_string(), "{src}");
    }
}

const HOSTS: &[&str] = &["a.test", "b.test", "A.test", "a.test:8080", "ab.test"];
const RULE_PIECES: &[&str] = &[
    "/", "x", "y", "<.*>", "<[a-z]+>", "<x|y>", ".", "<*>", "<**>", "-",
];
const SCHEMES: &[&str] = &[
    "http",
    "https",
    "http<s?>",
    "<https|http>",
    "<.*>",
    "<{http,https}>",
];

/// The index must only skip rules that cannot match: its answer equals a linear scan's.
#[test]
fn the_rule_index_agrees_with_a_linear_scan() {
    let mut g = Gen(1234);
    let methods = vec!["GET".to_string()];
    let mut matched = 0;
    for strategy in [Strategy::Regexp, Strategy::Glob] {
        for _ in 0..300 {
            let mut patterns = Vec::new();
            let mut urls = Vec::new();
            for _ in 0..(1 + g.next() % 12) {
                let url = format!(
                    "{}://{}{}",
                    g.pick(SCHEMES),
                    g.pick(HOSTS),
                    g.string(RULE_PIECES, 5)
                );
                if let Ok(p) = Pattern::compile(strategy, &url, &methods) {
                    patterns.push(p);
                    urls.push(url);
                }
            }
            let matcher = Matcher::new(strategy, patterns.clone(), urls.iter().map(String::as_str));
            for _ in 0..20 {
                let subject = format!(
                    "{}://{}/{}",
                    g.pick(&["http", "https"]),
                    g.pick(HOSTS).to_ascii_lowercase(),
                    g.string(&["x", "y", "/", ".", "-", "z"], 6)
                );
                let linear = patterns
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.matches("GET", &subject))
                    .map(|(i, _)| i)
                    .collect::<Vec<_>>();
                let expected = match linear.as_slice() {
                    [] => Found::None,
                    [one] => Found::One(*one),
                    _ => Found::Many,
                };
                assert_eq!(
                    matcher.find("GET", &subject),
                    expected,
                    "{subject} against {urls:?}"
                );
                matched += usize::from(expected != Found::None);
            }
        }
    }
    assert!(
        matched > 200,
        "the generator must produce matching subjects too ({matched})"
    );
}
