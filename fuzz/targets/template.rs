//! The template engine: `template \0 extra-json \0 header-value`. A template compiles or is
//! refused; a compiled one renders the same text twice over a real session; text without
//! actions renders as itself.

use portcullis::template::Template;
use portcullis::vocab::request::Headers;
use portcullis::vocab::session::{MatchContext, Query, Session, Url};
use std::sync::Arc;

pub fn template(data: &[u8]) {
    let f = super::fields(data, 3);
    let [src, extra, header] = [&f[0], &f[1], &f[2]];
    let Ok(t) = Template::compile(src) else {
        return;
    };
    let extra = serde_json::from_str(extra).unwrap_or(serde_json::Value::Null);
    let headers = Headers::new(vec![("x-foo".into(), header.clone())]);
    let captures = vec![header.clone(), String::new()];
    let session = Session {
        subject: header.clone(),
        extra: Arc::new(extra),
        header: Headers::new(Vec::new()),
        match_context: MatchContext {
            captures: &captures,
            url: Url {
                scheme: "https",
                host: "echo.example.com:8443",
                path: "/a b/é",
                query: Query(header),
            },
            method: "GET",
            header: &headers,
        },
    };
    let first = t.render(&session);
    assert_eq!(first, t.render(&session), "rendering is not deterministic");
    if !src.contains("{{") {
        assert_eq!(first.as_deref(), Ok(src.as_str()), "plain text changed");
    }
}
