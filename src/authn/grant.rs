//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) as Go's oauth2 package sends it
//! (client id and secret query-escaped into HTTP Basic): how `oauth2_client_credentials` checks a
//! caller's credentials and how `oauth2_introspection`'s `pre_authorization` gets a token for
//! portcullis itself. Status mapping is Oathkeeper's.

use crate::vocab::callout::Target;
use crate::vocab::callout::{Callout, CalloutResult};
use crate::vocab::percent::query_escape;
use crate::vocab::rejection::PipelineError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Go's oauth2 treats a token as expired this long before it says so.
const EXPIRY_DELTA_MS: u64 = 10_000;
/// A token whose answer gives no `expires_in` is reused for this long at most.
const NO_EXPIRY_MS: u64 = 3_600_000;

/// One grant request.
pub struct Request<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub scopes: &'a [String],
    pub audience: Option<&'a str>,
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    /// How long it may be used, from the answer's `expires_in`.
    pub usable_ms: u64,
}

pub fn callout(target: &Target, request: &Request<'_>) -> Callout {
    let mut body = String::from("grant_type=client_credentials");
    if let Some(a) = request.audience.filter(|a| !a.is_empty()) {
        body.push_str("&audience=");
        body.push_str(&query_escape(a));
    }
    if !request.scopes.is_empty() {
        body.push_str("&scope=");
        body.push_str(&query_escape(&request.scopes.join(" ")));
    }
    let basic = format!(
        "{}:{}",
        query_escape(request.client_id),
        query_escape(request.client_secret)
    );
    let mut call = Callout::to(target, "POST", target.path_and_query());
    call.set_header(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    );
    call.set_header("authorization", format!("Basic {}", STANDARD.encode(basic)));
    call.body = Some(body.into_bytes());
    call
}

/// The token in the endpoint's answer, or the error Oathkeeper answers with.
/// Why a token endpoint granted nothing.
#[derive(Debug)]
pub enum GrantError {
    /// Any status but 2xx and 429.
    Answered(u32),
    NotJson,
    EmptyToken,
}

impl std::fmt::Display for GrantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantError::Answered(503) => f.write_str("The upstream service is not available"),
            GrantError::Answered(status) => write!(f, "the token endpoint answered {status}"),
            GrantError::NotJson => {
                f.write_str("the token endpoint answered with a body that is not JSON")
            }
            GrantError::EmptyToken => {
                f.write_str("the token endpoint issued an empty access token")
            }
        }
    }
}

impl std::error::Error for GrantError {}

/// Token endpoint statuses as Oathkeeper maps them.
impl From<GrantError> for PipelineError {
    fn from(e: GrantError) -> PipelineError {
        match e {
            GrantError::Answered(503) | GrantError::NotJson => PipelineError::unavailable(e),
            GrantError::Answered(500) => PipelineError::internal(e),
            GrantError::Answered(status @ (404 | 504)) => PipelineError::upstream(status, e),
            GrantError::Answered(_) | GrantError::EmptyToken => PipelineError::unauthorized(e),
        }
    }
}

pub fn judge(result: CalloutResult) -> Result<Grant, PipelineError> {
    let (status, headers, body) = result.reached("the token endpoint")?;
    match status {
        200..=299 => {}
        429 => return Err(PipelineError::rate_limited(headers)),
        status => return Err(GrantError::Answered(status).into()),
    }
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|_| GrantError::NotJson)?;
    let access_token = doc
        .get("access_token")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if access_token.is_empty() {
        return Err(GrantError::EmptyToken.into());
    }
    let expires_in = match doc.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(Grant {
        access_token: access_token.to_string(),
        usable_ms: expires_in.map_or(NO_EXPIRY_MS, |s| {
            s.saturating_mul(1000).saturating_sub(EXPIRY_DELTA_MS)
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u32, body: &str) -> CalloutResult {
        CalloutResult::Response {
            status,
            headers: vec![("retry-after".into(), "2".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_as_oathkeeper_maps_them() {
        let code = |s| judge(answer(s, "{}")).map_err(|e| e.code()).err();
        assert_eq!(code(429), Some(429));
        assert_eq!(code(503), Some(503));
        assert_eq!(code(500), Some(500));
        assert_eq!(code(504), Some(504));
        assert_eq!(code(404), Some(404));
        assert_eq!(code(400), Some(401));
        assert_eq!(code(401), Some(401));
        assert_eq!(
            judge(CalloutResult::Failed).map_err(|e| e.code()).err(),
            Some(503)
        );
        assert_eq!(code(200), Some(401), "an empty access_token is a 401");
    }

    #[test]
    fn expiry_keeps_go_oauth2_margin() {
        let g = judge(answer(200, r#"{"access_token":"t","expires_in":60}"#));
        assert_eq!(
            g,
            Ok(Grant {
                access_token: "t".into(),
                usable_ms: 50_000
            })
        );
    }

    #[test]
    fn credentials_are_query_escaped_into_basic() {
        let target = Target {
            cluster: "idp".into(),
            timeout_ms: 2000,
            scheme: "http".into(),
            authority: "idp".into(),
            path: "/oauth2/token".into(),
            query: String::new(),
        };
        let scopes = ["a".to_string(), "b c".to_string()];
        let c = callout(
            &target,
            &Request {
                client_id: "my client",
                client_secret: "s:e/c",
                scopes: &scopes,
                audience: None,
            },
        );
        let auth = c
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone());
        assert_eq!(
            auth,
            Some(format!("Basic {}", STANDARD.encode("my+client:s%3Ae%2Fc")))
        );
        assert_eq!(
            c.body.as_deref(),
            Some(&b"grant_type=client_credentials&scope=a+b+c"[..])
        );
    }
}
