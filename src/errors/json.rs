//! The `json` error handler: herodot's error body, verbose or generic.
//!
//! herodot's `details`: Oathkeeper sets them in one place, its jwt authenticator, which on a
//! verification failure of a token that parses adds `jwt_claims` (the unverified claims as a
//! JSON string). Claims are personal data in a body any client can provoke with a token it has
//! seen, so they are written only with `verbose` and `log.leak_sensitive_values`
//! (`tests/scenarios/json-details*.yaml`).

use crate::vocab::effect::Reply;
use crate::vocab::rejection::{status_text, PipelineError};
use serde_json::Value;

/// herodot's generic messages, shown when `verbose` is off so no reason leaks.
fn generic_message(code: u32) -> Option<&'static str> {
    Some(match code {
        400 => "The request was malformed or contained invalid parameters",
        401 => "The request could not be authorized",
        403 => "The requested action was forbidden",
        404 => "The requested resource could not be found",
        409 => "The resource could not be created due to a conflict",
        415 => "The request is using an unknown content type",
        429 => "Too many requests",
        500 => "An internal server error occurred, please contact the system administrator",
        _ => return None,
    })
}

/// A JSON string as Go's `encoding/json` (herodot) writes it: `<`, `>`, `&`, U+2028 and U+2029
/// escaped, so a reason or request id carrying `</script>` stays inert wherever the body lands.
fn quote(s: &str) -> String {
    let json = Value::from(s).to_string();
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `{"error":{…}}` with herodot's field order: code, status, request, reason, details,
/// message. `leak` is `log.leak_sensitive_values`: only then may verbose bodies carry claims.
pub fn reply(error: &PipelineError, verbose: bool, leak: bool, request_id: Option<&str>) -> Reply {
    let code = error.code();
    let mut body = format!(
        "{{\"error\":{{\"code\":{code},\"status\":{}",
        quote(status_text(code))
    );
    if let Some(id) = request_id.filter(|id| !id.is_empty()) {
        body.push_str(",\"request\":");
        body.push_str(&quote(id));
    }
    let message = match (verbose, generic_message(code)) {
        (false, Some(generic)) => std::borrow::Cow::Borrowed(generic),
        _ => {
            if let Some(reason) = error.reason().filter(|_| verbose) {
                body.push_str(",\"reason\":");
                body.push_str(&quote(&reason));
            }
            if let Some(claims) = error.jwt_claims().filter(|_| verbose && leak) {
                body.push_str(",\"details\":{\"jwt_claims\":");
                body.push_str(&quote(&claims.to_string()));
                body.push('}');
            }
            error.message()
        }
    };
    body.push_str(",\"message\":");
    body.push_str(&quote(&message));
    body.push_str("}}\n");
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(error.headers().iter().cloned());
    Reply {
        status: code,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason that is only its text.
    fn said(text: &str) -> crate::vocab::rejection::Reason {
        std::sync::Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(text))
    }

    #[test]
    fn bodies_match_herodot_field_order() {
        let r = reply(&PipelineError::Unauthorized(None), false, false, None);
        assert_eq!(
            r.body,
            "{\"error\":{\"code\":401,\"status\":\"Unauthorized\",\"message\":\"The request could not be authorized\"}}\n"
        );
        let r = reply(
            &PipelineError::Unauthorized(Some(said("bad token"))),
            true,
            false,
            Some("abc"),
        );
        assert_eq!(
            r.body,
            "{\"error\":{\"code\":401,\"status\":\"Unauthorized\",\"request\":\"abc\",\"reason\":\"bad token\",\"message\":\"Access credentials are invalid\"}}\n"
        );
    }

    #[test]
    fn codes_without_a_generic_message_keep_their_own() {
        let r = reply(
            &PipelineError::Unavailable(said("session store unreachable")),
            false,
            false,
            None,
        );
        assert_eq!(r.status, 503);
        assert!(r.body.contains("\"message\":\"session store unreachable\""));
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        let r = reply(
            &PipelineError::Unauthorized(Some(said("a\"b\\c\r\n\u{0}</script><b>&\u{2028}"))),
            true,
            false,
            Some("\"},\"x\":1"),
        );
        assert!(r.body.contains(
            r#""reason":"a\"b\\c\r\n\u0000\u003c/script\u003e\u003cb\u003e\u0026\u2028""#
        ));
        assert!(r.body.contains(r#""request":"\"},\"x\":1""#));
        let parsed: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(parsed["error"]["request"], "\"},\"x\":1");
        assert_eq!(
            parsed["error"]["reason"],
            "a\"b\\c\r\n\u{0}</script><b>&\u{2028}"
        );
        assert!(!r.body.contains('<'));
        assert_eq!(
            r.body.matches('\n').count(),
            1,
            "only the final newline is raw"
        );
    }

    #[test]
    fn rate_limit_headers_are_copied() {
        let e = PipelineError::TooManyRequests(vec![("retry-after".into(), "7".into())]);
        let r = reply(&e, false, false, None);
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after".into(), "7".into())));
    }
}
