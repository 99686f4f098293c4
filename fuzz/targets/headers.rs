//! The Cookie and Accept parsers: `cookie \0 cookie \0 accept \0 configured-mime`, read
//! directly and through a rule whose `redirect` error handler answers only `text/html`.
//! Cookies come out trimmed and unsplittable; `cookie_session` calls the store exactly when the
//! parser finds its cookie; the error handler chosen is the one `matches_mime` names (both
//! responsible: 500).

use super::pipeline::{get, load, status, Exchange};
use portcullis::errors::when::matches_mime;
use portcullis::filter::Filter;
use portcullis::vocab::callout::CalloutResult;
use portcullis::vocab::cookies::{cookie, cookies};
use portcullis::vocab::request::Headers;
use std::sync::Arc;

const CONFIG: &str = r#"
access_rules:
  rules:
    - id: r
      match: { url: "http://echo.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: allow }
      mutators: [{ handler: noop }]
      errors:
        - handler: redirect
          config:
            to: https://login.example.com/
            when: [{ request: { header: { accept: [text/html] } } }]
        - handler: json
          config:
            when: [{ request: { header: { accept: [application/json] } } }]
authenticators:
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      cache: { enabled: false }
authorizers: { allow: { enabled: true } }
mutators: { noop: { enabled: true } }
errors:
  fallback: [json]
  handlers:
    json: { enabled: true }
    redirect: { enabled: true }
clusters: { "http://kratos-public.auth": kratos }
"#;

thread_local! {
    static FILTER: Arc<Filter> = load(CONFIG);
}

pub fn headers(data: &[u8]) {
    let f = super::fields(data, 4);
    let (c1, c2, accept, configured) = (&f[0], &f[1], &f[2], &f[3]);
    let h = Headers::new(vec![
        ("cookie".into(), c1.clone()),
        ("cookie".into(), c2.clone()),
        ("accept".into(), accept.clone()),
    ]);
    for (name, value) in cookies(&h) {
        assert!(!name.is_empty() && name == name.trim(), "{name:?}");
        assert!(
            !name.contains([';', '=']) && !value.contains(';'),
            "{name:?}={value:?}"
        );
        assert_eq!(
            cookie(&h, name),
            cookies(&h).find(|(n, _)| *n == name).map(|(_, v)| v)
        );
    }
    assert!(matches_mime(Some(accept), &["*/*".to_string()]));
    let configured = vec![configured.clone()];
    let upper = vec![configured[0].to_ascii_uppercase()];
    assert_eq!(
        matches_mime(Some(accept), &configured),
        matches_mime(Some(accept), &upper),
        "MIME matching is ASCII-case-sensitive"
    );

    let session = cookie(&h, "ory_kratos_session").is_some();
    let mut ex = Exchange::new(FILTER.with(Arc::clone));
    let request = get(
        "http",
        "echo.example.com",
        "/a",
        &[("cookie", c1), ("cookie", c2), ("accept", accept)],
    );
    let (calls, effects) = ex.run(request, &|_| CalloutResult::Response {
        status: 401,
        headers: Vec::new(),
        body: b"{}".to_vec(),
    });
    assert_eq!(calls.len(), usize::from(session), "cookies {c1:?} / {c2:?}");
    let html = matches_mime(Some(accept), &["text/html".to_string()]);
    let json = matches_mime(Some(accept), &["application/json".to_string()]);
    // Two responsible rule-level handlers are a configuration mistake: 500.
    let expected = match (html, json) {
        (true, true) => 500,
        (true, false) => 302,
        (false, _) => 401,
    };
    assert_eq!(status(&effects), Some(expected), "accept {accept:?}");
}
