//! `serve.proxy.cors` of an Oathkeeper server configuration as Envoy's CORS policy
//! (`envoy.extensions.filters.http.cors.v3.CorsPolicy`), for a virtual host's or route's
//! `typed_per_filter_config`, with `envoy.filters.http.cors` placed before portcullis.
//!
//! Oathkeeper hands the block to rs/cors, and the translation keeps rs/cors' answers:
//! - an origin is compared lowercased; the first `*` in an allowed origin splits it into a prefix
//!   and a suffix, and an origin is allowed when it starts with the prefix and ends with the
//!   suffix (zero or more characters between, so `https://*.example.com` covers every subdomain
//!   depth and not `https://example.com`). That is the RE2 regex `(?is)PREFIX.*SUFFIX` (Envoy
//!   matches the whole value); a plain origin is an `exact` matcher with `ignore_case`;
//! - `*` alone, or no origins at all, allows every origin;
//! - no methods means GET, POST, HEAD, and no headers means Origin, Accept, Content-Type;
//! - `max_age` 0 sends no `Access-Control-Max-Age`;
//! - a preflight is always answered by the CORS filter, never passed on to the rules
//!   (`forward_not_matching_preflights: false`), as rs/cors answers it without calling the proxy.

use crate::CliError;
use serde_yaml::{Mapping, Value};

const KEYS: &[&str] = &[
    "enabled",
    "allowed_origins",
    "allowed_methods",
    "allowed_headers",
    "exposed_headers",
    "allow_credentials",
    "max_age",
    "debug",
];

/// The `typed_per_filter_config` entry for `serve.proxy.cors` of `config` (read from `file`).
pub fn policy(file: &str, config: &Value) -> Result<Value, CliError> {
    let bad = |m: String| CliError::Failed(format!("{file}: serve.proxy.cors: {m}"));
    let cors = match config
        .get("serve")
        .and_then(|s| s.get("proxy"))
        .and_then(|p| p.get("cors"))
    {
        Some(Value::Mapping(m)) => m,
        Some(_) => return Err(bad("expected a mapping".into())),
        None => {
            return Err(CliError::Failed(format!(
                "{file}: no serve.proxy.cors to translate"
            )))
        }
    };
    for key in cors.keys() {
        let known = key.as_str().is_some_and(|k| KEYS.contains(&k));
        if !known {
            return Err(bad(format!(
                "unknown key {}",
                serde_yaml::to_string(key).unwrap_or_default().trim()
            )));
        }
    }
    let flag = |key: &str| match cors.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("{key} must be true or false"))),
    };
    let list = |key: &str, default: &[&str]| -> Result<Vec<String>, CliError> {
        match cors.get(key) {
            None => Ok(default.iter().map(|s| s.to_string()).collect()),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("{key} must be a list of strings")))
                })
                .collect(),
            Some(_) => Err(bad(format!("{key} must be a list of strings"))),
        }
    };
    if !flag("enabled")? {
        return Err(bad(
            "enabled is not true: Oathkeeper sends no CORS headers, so there is no policy to write"
                .into(),
        ));
    }
    if flag("debug")? {
        eprintln!(
            "portcullis: {file}: serve.proxy.cors.debug has no Envoy policy field: \
             Envoy counts <stat_prefix>.cors.origin_valid / origin_invalid"
        );
    }

    let origins = list("allowed_origins", &["*"])?;
    let methods = list(
        "allowed_methods",
        &["GET", "POST", "PUT", "PATCH", "DELETE"],
    )?;
    let headers = list("allowed_headers", &["Authorization", "Content-Type"])?;
    let exposed = list("exposed_headers", &["Content-Type"])?;
    let credentials = flag("allow_credentials")?;
    let max_age = match cors.get("max_age") {
        None => 0,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| bad("max_age must be a whole number of seconds".into()))?,
    };

    let matchers = origin_matchers(&origins);
    if credentials && origins_all(&origins) {
        eprintln!(
            "portcullis: {file}: serve.proxy.cors allows every origin with credentials: \
             any site can make requests with your users' cookies (as in Oathkeeper)"
        );
    }
    let mut policy = Mapping::new();
    policy.insert(
        "@type".into(),
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy".into(),
    );
    policy.insert(
        "allow_origin_string_match".into(),
        Value::Sequence(matchers),
    );
    let methods: Vec<String> = if methods.is_empty() {
        vec!["GET".into(), "POST".into(), "HEAD".into()]
    } else {
        methods.iter().map(|m| m.to_uppercase()).collect()
    };
    policy.insert("allow_methods".into(), methods.join(",").into());
    let headers = if headers.iter().any(|h| h == "*") {
        "*".to_string()
    } else if headers.is_empty() {
        "Origin,Accept,Content-Type".to_string()
    } else {
        headers.join(",")
    };
    policy.insert("allow_headers".into(), headers.into());
    if !exposed.is_empty() {
        policy.insert("expose_headers".into(), exposed.join(",").into());
    }
    if max_age > 0 {
        policy.insert("max_age".into(), max_age.to_string().into());
    }
    policy.insert("allow_credentials".into(), credentials.into());
    policy.insert("forward_not_matching_preflights".into(), false.into());
    let mut entry = Mapping::new();
    entry.insert("envoy.filters.http.cors".into(), Value::Mapping(policy));
    Ok(Value::Mapping(entry))
}

fn origins_all(origins: &[String]) -> bool {
    origins.is_empty() || origins.iter().any(|o| o == "*")
}

/// Envoy string matchers answering as rs/cors does for these allowed origins.
fn origin_matchers(origins: &[String]) -> Vec<Value> {
    if origins_all(origins) {
        return vec![regex(".*")];
    }
    origins
        .iter()
        .map(|origin| {
            let origin = origin.to_lowercase();
            match origin.split_once('*') {
                Some((prefix, suffix)) => {
                    regex(&format!("(?is){}.*{}", escape(prefix), escape(suffix)))
                }
                None => {
                    let mut m = Mapping::new();
                    m.insert("exact".into(), origin.into());
                    m.insert("ignore_case".into(), true.into());
                    Value::Mapping(m)
                }
            }
        })
        .collect()
}

fn regex(pattern: &str) -> Value {
    let mut inner = Mapping::new();
    inner.insert("regex".into(), pattern.into());
    let mut m = Mapping::new();
    m.insert("safe_regex".into(), Value::Mapping(inner));
    Value::Mapping(m)
}

/// `text` as an RE2 literal: every metacharacter escaped (a second `*` stays a literal star, as
/// it does in rs/cors).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matchers(origins: &[&str]) -> String {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        serde_yaml::to_string(&origin_matchers(&origins)).unwrap()
    }

    #[test]
    fn wildcards_become_anchored_case_insensitive_regexes() {
        assert_eq!(
            matchers(&["https://*.Example.com"]),
            "- safe_regex:\n    regex: (?is)https://.*\\.example\\.com\n"
        );
        // Only the first star is a wildcard; the rest of the origin is literal.
        assert_eq!(
            matchers(&["https://*.a*b.example.com:8443"]),
            "- safe_regex:\n    regex: (?is)https://.*\\.a\\*b\\.example\\.com:8443\n"
        );
        assert_eq!(
            matchers(&["http://LOCALHOST:3000"]),
            "- exact: http://localhost:3000\n  ignore_case: true\n"
        );
        assert_eq!(
            matchers(&["https://a.example.com", "*"]),
            "- safe_regex:\n    regex: .*\n"
        );
        assert_eq!(matchers(&[]), "- safe_regex:\n    regex: .*\n");
    }
}
