//! `when` conditions that make an error handler responsible: error names, the request's
//! `Accept` and `Content-Type` with Oathkeeper's MIME rules, and the client's address.

use super::remote_ip::RemoteIp;
use crate::config::{Invalid, Kind};
use crate::vocab::rejection::PipelineError;
use crate::vocab::request::Request;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default)]
    pub request: Option<WhenRequest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenRequest {
    #[serde(default)]
    pub header: Option<WhenHeader>,
    #[serde(default)]
    pub remote_ip: Option<RemoteIp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenHeader {
    #[serde(default)]
    pub accept: Vec<String>,
    #[serde(default)]
    pub content_type: Vec<String>,
}

/// The error names `when.error` may use: Go's status text, lowercase, `_` for spaces.
pub const ERROR_NAMES: &[&str] = &[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "too_many_requests",
    "internal_server_error",
    "service_unavailable",
];

pub fn error_name(code: u32) -> &'static str {
    match code {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        429 => "too_many_requests",
        503 => "service_unavailable",
        _ => "internal_server_error",
    }
}

impl When {
    pub fn validate(&self) -> Result<(), Invalid> {
        for name in &self.error {
            if !ERROR_NAMES.contains(&name.as_str()) {
                return Err(Invalid::new(
                    "when.error",
                    Kind::NotOneOf {
                        value: name.clone(),
                        accepted: format!("one of {}", ERROR_NAMES.join(", ")),
                    },
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, error: &PipelineError, request: Option<&Request>) -> bool {
        let name = error_name(error.code());
        if !self.error.is_empty() && !self.error.iter().any(|e| e == name) {
            return false;
        }
        let Some(conditions) = self.request.as_ref() else {
            return true;
        };
        if conditions
            .remote_ip
            .as_ref()
            .is_some_and(|r| !r.matches(request))
        {
            return false;
        }
        let Some(header) = conditions.header.as_ref() else {
            return true;
        };
        let get = |n: &str| request.and_then(|r| r.headers.get(n));
        (header.accept.is_empty() || matches_mime(get("accept"), &header.accept))
            && (header.content_type.is_empty()
                || matches_mime(get("content-type"), &header.content_type))
    }
}

/// An absent or empty `when` is always responsible; otherwise any entry may match.
pub fn responsible(when: &[When], error: &PipelineError, request: Option<&Request>) -> bool {
    when.is_empty() || when.iter().any(|w| w.matches(error, request))
}

/// Oathkeeper's `matchesAcceptMIME`: a configured `*/*` or `type/*` is a wildcard, a wildcard
/// in the request matches only the same configured string, q-values and parameters are
/// ignored, and a missing header reads as `application/octet-stream`.
pub fn matches_mime(header: Option<&str>, configured: &[String]) -> bool {
    let header = header
        .filter(|h| !h.trim().is_empty())
        .unwrap_or("application/octet-stream");
    // Compared without case and without allocating: this runs on every refused request.
    header.split(',').any(|item| {
        let requested = item.split(';').next().unwrap_or("").trim();
        configured.iter().any(|c| {
            let c = c.trim();
            if c == "*/*" || c.eq_ignore_ascii_case(requested) {
                return true;
            }
            match (c.strip_suffix("/*"), requested.split_once('/')) {
                (Some(major), Some((req_major, _))) => major.eq_ignore_ascii_case(req_major),
                _ => false,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mime_rules() {
        let json = v(&["application/json"]);
        assert!(matches_mime(Some("application/json"), &json));
        assert!(matches_mime(
            Some("text/html, application/json;q=0.9"),
            &json
        ));
        assert!(!matches_mime(Some("*/*"), &json));
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        assert!(!matches_mime(Some(chrome), &json));
        assert!(matches_mime(Some(chrome), &v(&["text/*"])));
        assert!(matches_mime(Some("*/*"), &v(&["*/*"])));
        assert!(matches_mime(None, &v(&["application/octet-stream"])));
        assert!(!matches_mime(None, &json));
        assert!(matches_mime(Some("application/json; charset=utf-8"), &json));
    }
}
