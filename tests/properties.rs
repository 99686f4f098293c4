//! Property tests without a framework: a seeded generator feeds hostile strings to the path
//! normaliser, the matcher and the template engine. None may panic, and normalising twice
//! changes nothing.

use portcullis::rules::path::normalize;
use portcullis::rules::{find, Pattern, Strategy};
use portcullis::template::{Object, Template, Value};

/// xorshift64*: deterministic, so a failure reproduces from its seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn string(&mut self, alphabet: &[&str], max: u64) -> String {
        let len = self.next() % max;
        (0..len).map(|_| self.pick(alphabet)).collect()
    }
}

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
                let _ = find(std::slice::from_ref(&p), "GET", &subject);
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
    fn method<'a>(&'a self, _: &str, _: &[Value<'a>]) -> Option<Result<Value<'a>, String>> {
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
