//! Native micro-benchmarks of the per-request operations. `micro` alone prints ns/op for every
//! operation; `micro OP N` runs one operation N times (benches/micro.sh runs that under callgrind
//! twice and reports instructions per operation, which are stable on a noisy machine).

#[path = "../tests/common/mint.rs"]
mod mint;

use portcullis::cache::session::{Lookup, Outcome, SessionCache};
use portcullis::cache::SharedData;
use portcullis::rules::{Matcher, Pattern, Strategy};
use portcullis::template::{Object, Template, Value};
use portcullis::vocab::cookies::cookie;
use portcullis::vocab::request::Headers;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

/// `n` rules; `id` is the expression of the item id (`(?!0)[0-9]+` takes the lookaround matcher).
fn matcher(n: usize, id: &str) -> Matcher {
    let methods = vec!["GET".to_string()];
    let urls: Vec<String> = (0..n)
        .map(|i| format!("http<s?>://svc{i}.example.com/api/v1/items/<{id}></?.*>"))
        .collect();
    let patterns = urls
        .iter()
        .map(|u| Pattern::compile(Strategy::Regexp, u, &methods).unwrap())
        .collect();
    Matcher::new(Strategy::Regexp, patterns, urls.iter().map(String::as_str))
}

struct Session(serde_json::Value);

impl Object for Session {
    fn field(&self, name: &str) -> Option<Value<'_>> {
        match name {
            "Subject" => Some(Value::Str("5ff66179-c240-4703-b0d8-494592cefff5".into())),
            "Extra" => Some(Value::Json(&self.0)),
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
    fn display(&self, _: &mut String) {}
    fn type_name(&self) -> &'static str {
        "session"
    }
}

struct NoShared;

impl SharedData for NoShared {
    fn get(&self, _: &str) -> Option<(Vec<u8>, u32)> {
        None
    }
    fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> bool {
        true
    }
}

type Op = Box<dyn FnMut()>;

fn ops() -> Vec<(&'static str, Op)> {
    let mut ops: Vec<(&'static str, Op)> = Vec::new();
    for (n, id, kind) in [
        (10usize, "[0-9]+", ""),
        (100, "[0-9]+", ""),
        (1000, "[0-9]+", ""),
        (10, "(?!0)[0-9]+", "lookahead_"),
    ] {
        let m = matcher(n, id);
        let subject = format!("https://svc{}.example.com/api/v1/items/42/details", n - 1);
        let name: &'static str = Box::leak(format!("match_{n}_{kind}rules").into_boxed_str());
        ops.push((
            name,
            Box::new(move || {
                black_box(m.find(black_box("GET"), black_box(&subject)));
            }),
        ));
    }
    let template = Template::compile("{{ print .Subject }}").unwrap();
    let session = Session(serde_json::json!({"identity": {"traits": {"email": "a@b.c"}}}));
    ops.push((
        "template_subject",
        Box::new(move || {
            black_box(template.render(black_box(&session)).unwrap());
        }),
    ));
    let template = Template::compile("{{ print .Extra.identity.traits.email | upper }}").unwrap();
    let session = Session(serde_json::json!({"identity": {"traits": {"email": "a@b.c"}}}));
    ops.push((
        "template_extra_pipeline",
        Box::new(move || {
            black_box(template.render(black_box(&session)).unwrap());
        }),
    ));
    let headers = Headers::new(vec![(
        "cookie".into(),
        "theme=dark; csrf_token=abcdef0123456789; ory_kratos_session=MTcwMDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQVJfLUNBQUVHYzNSeWFXNW5EQThBRFhObGMzTnBiMjVmZEc5clpXND0=".into(),
    )]);
    ops.push((
        "cookie_parse",
        Box::new(move || {
            black_box(cookie(black_box(&headers), "ory_kratos_session"));
        }),
    ));
    let mut cache = SessionCache::new(10_000, 32 << 20);
    let key = [7u8; 32];
    assert_eq!(cache.lookup(&key, 1, 0, 2_000, &NoShared), Lookup::Lead);
    let outcome = Outcome::Session {
        subject: "5ff66179-c240-4703-b0d8-494592cefff5".into(),
        extra: std::sync::Arc::new(serde_json::json!({"identity": {"id": "x"}})),
    };
    cache.complete(&key, outcome, Some(u64::MAX), 0, &NoShared);
    ops.push((
        "session_cache_hit",
        Box::new(move || {
            black_box(cache.lookup(black_box(&key), 2, 1, 2_000, &NoShared));
        }),
    ));
    let play1 = std::fs::read("filter-config/play1.yaml").unwrap();
    let loaded = portcullis::context::http::Loaded::new(portcullis::filter::load(&play1).unwrap());
    let request: Vec<(String, Vec<u8>)> = vec![
        (":authority".into(), b"echo.example.com".to_vec()),
        (":path".into(), b"/api/bench".to_vec()),
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        ("user-agent".into(), b"wrk".to_vec()),
        ("x-forwarded-proto".into(), b"http".to_vec()),
        (
            "x-request-id".into(),
            b"4c1f3a57-8f0e-4a55-9d36-0a9d1f0f6a1b".to_vec(),
        ),
    ];
    ops.push((
        "pipeline_play1_request",
        Box::new(move || {
            let mut ex = portcullis::pipeline::Exchange::new(
                std::sync::Arc::clone(&loaded.filter),
                Rc::clone(&loaded.vm),
                1,
            );
            let env = portcullis::pipeline::Env {
                now_ms: 0,
                shared: &NoShared,
            };
            black_box(ex.on_request_headers(black_box(request.clone()), &env));
        }),
    ));
    ops.extend(jwt_ops());
    ops.push((
        "digest_cache_key",
        Box::new(move || {
            black_box(portcullis::cache::digest::digest(black_box(
                b"GET /sessions/whoami ory_kratos_session=abcdefabcdefabcdef",
            )));
        }),
    ));
    ops
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut ops = ops();
    if let [op, n] = args.as_slice() {
        let n: u64 = n.parse().expect("iterations");
        let (_, f) = ops
            .iter_mut()
            .find(|(name, _)| name == op)
            .expect("unknown op");
        for _ in 0..n {
            f();
        }
        return;
    }
    println!("{:<26} {:>10}", "operation", "ns/op");
    for (name, f) in ops.iter_mut() {
        for _ in 0..1000 {
            f();
        }
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        println!(
            "{name:<26} {:>10.1}",
            start.elapsed().as_nanos() as f64 / n as f64
        );
    }
}

/// Parsing an RS256 token (header and claims, no signature), and a whole request through Play 3's
/// jwt rule whose token is already verified and cached.
fn jwt_ops() -> Vec<(&'static str, Op)> {
    const NOW_MS: u64 = 1_700_000_000_000;
    let play3 = std::fs::read("filter-config/play3.yaml").unwrap();
    let loaded = portcullis::context::http::Loaded::new(portcullis::filter::load(&play3).unwrap());
    let jwks = std::fs::read("tests/keys/jwks.json").unwrap();
    loaded.vm.borrow_mut().jwks.get().on_fetched(
        &loaded.filter.jwks_sources,
        0,
        portcullis::vocab::callout::CalloutResult::Response {
            status: 200,
            headers: vec![],
            body: jwks,
        },
        NOW_MS,
        &NoShared,
    );
    let claims = serde_json::json!({
        "aud": "https://management.azure.com",
        "iss": "https://sts.windows.net/11111111-2222-3333-4444-555555555555/",
        "sub": "9f1c1a6e-managed-identity", "appid": "app-9f1c1a6e", "tid": "11111111-2222-3333-4444-555555555555",
        "iat": 1_699_999_000, "nbf": 1_699_999_000, "exp": 1_700_003_600,
    });
    let token = mint::mint(&mint::JwtSpec {
        alg: "RS256".into(),
        key: None,
        kid: None,
        claims: claims.as_object().unwrap().clone(),
        tamper: false,
    });
    let parse_token = token.clone();
    let parse: Op = Box::new(move || {
        black_box(portcullis::jose::token::Parsed::parse(black_box(&parse_token)).is_ok());
    });
    let request: Vec<(String, Vec<u8>)> = vec![
        (":authority".into(), b"api.example.com".to_vec()),
        (":path".into(), b"/machines/bench".to_vec()),
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ];
    let run = move || {
        let mut ex = portcullis::pipeline::Exchange::new(
            std::sync::Arc::clone(&loaded.filter),
            Rc::clone(&loaded.vm),
            1,
        );
        let env = portcullis::pipeline::Env {
            now_ms: NOW_MS,
            shared: &NoShared,
        };
        ex.on_request_headers(black_box(request.clone()), &env)
    };
    let first = run();
    assert!(
        first
            .iter()
            .any(|e| matches!(e, portcullis::vocab::effect::Effect::Continue)),
        "the token verifies: {first:?}"
    );
    vec![
        ("jwt_parse", parse),
        (
            "pipeline_jwt_cache_hit",
            Box::new(move || {
                black_box(run());
            }),
        ),
    ]
}
