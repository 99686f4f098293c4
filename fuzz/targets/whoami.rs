//! The session store's answer (Kratos whoami): `status-byte body`. Whatever the body, the
//! request ends as the README says: 5xx and a 200 that is not JSON are 503, 429 is 429, other
//! statuses 401; a 200 forwards `x-user-id` = `identity.id`, or is refused (403, or 500 for a
//! value a header cannot carry). Forwarded values never carry control bytes, and a cached answer
//! decides the next request exactly as the first was decided.

use super::pipeline::{get, load, set_header, status, Exchange};
use portcullis::filter::Filter;
use portcullis::vocab::callout::CalloutResult;
use portcullis::vocab::effect::Effect;
use std::sync::Arc;

const CONFIG: &str = r#"
access_rules:
  rules:
    - id: echo-kratos
      match: { url: "http://echo.example.com/<.*>", methods: [GET] }
      authenticators:
        - handler: cookie_session
        - handler: anonymous
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
authenticators:
  anonymous: { enabled: true, config: { subject: guest } }
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      subject_from: identity.id
      extra_from: "@this"
      cache: { enabled: true, ttl: 30s }
authorizers: { allow: { enabled: true } }
mutators:
  header:
    enabled: true
    config:
      headers:
        x-user-id: "{{ print .Subject }}"
        x-user-email: "{{ print .Extra.identity.traits.email }}"
        x-user-name: "{{ .Extra.identity.traits.name.first | default \"?\" }}"
errors:
  fallback: [json]
  handlers: { json: { enabled: true, config: { verbose: true } } }
clusters: { "http://kratos-public.auth": kratos }
"#;

const STATUSES: &[u32] = &[
    200, 200, 200, 200, 200, 200, 401, 403, 404, 429, 500, 502, 503, 302,
];

thread_local! {
    static FILTER: Arc<Filter> = load(CONFIG);
}

pub fn whoami(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let code = STATUSES
        .get(usize::from(first) % STATUSES.len())
        .copied()
        .unwrap_or(200);
    let mut ex = Exchange::new(FILTER.with(Arc::clone));
    let request = || {
        get(
            "http",
            "echo.example.com",
            "/notes",
            &[("cookie", "ory_kratos_session=fuzz")],
        )
    };
    let answer = |_: &_| CalloutResult::Response {
        status: code,
        headers: vec![("retry-after".into(), "7".into())],
        body: body.to_vec(),
    };
    let (calls, effects) = ex.run(request(), &answer);
    assert_eq!(calls.len(), 1, "one whoami call");
    for e in &effects {
        if let Effect::SetHeader(name, value) = e {
            super::assert_header_value_safe(name, value);
        }
    }
    let doc = serde_json::from_slice::<serde_json::Value>(body).ok();
    let got = status(&effects);
    match code {
        500..=599 => assert_eq!(got, Some(503)),
        429 => assert_eq!(got, Some(429)),
        200 if doc.is_none() => assert_eq!(got, Some(503), "a 200 that is not JSON"),
        200 => {
            let doc = doc.unwrap_or_default();
            match doc.pointer("/identity/id") {
                Some(serde_json::Value::String(id)) if got.is_none() => {
                    assert_eq!(set_header(&effects, "x-user-id"), Some(id.as_str()));
                }
                _ => assert!(
                    got.is_none_or(|s| s == 403 || s == 500),
                    "a 200 gave {got:?}"
                ),
            }
            if got.is_none() {
                assert_ne!(set_header(&effects, "x-user-id"), Some("guest"));
            }
        }
        _ => assert_eq!(got, Some(401)),
    }
    // The answer may be cached; if it was, the cache decides the same way.
    let (again_calls, again) = ex.run(request(), &answer);
    if again_calls.is_empty() {
        assert_eq!(again, effects, "the cached answer decided differently");
    }
}
