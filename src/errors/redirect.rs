//! The `redirect` error handler: 301/302 to `to`, optionally carrying where the caller was.
//!
//! Where the caller was (`return_to`) is built as Oathkeeper ≥ v0.38.20 builds it, from
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Uri` over the matched URL, with one
//! rule so that a client cannot make `return_to` name a host the operator did not allow:
//! a forwarded header may change the scheme (`http` or `https` only) and the path, which a
//! client could as well have requested directly, but the host only to one listed in
//! `forwarded_hosts` (a portcullis key; empty by default, so `X-Forwarded-Host` is ignored).
//! `X-Forwarded-Proto` is Envoy's own: it overwrites a client's value with the downstream
//! connection's scheme unless `xff_num_trusted_hops` is non-zero (then a trusted proxy set it).
//! The `Location` itself is always `to`.

use crate::config::{Invalid, Kind};
use crate::vocab::effect::Reply;
use crate::vocab::percent::{push_encoded, query_escape};
use crate::vocab::request::{Headers, Request};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    pub to: String,
    #[serde(default = "default_code")]
    pub code: u32,
    #[serde(default)]
    pub return_to_query_param: String,
    #[serde(default)]
    pub when: Vec<super::when::When>,
    /// Hosts (`host[:port]`, compared case-insensitively) that `X-Forwarded-Host` may put into
    /// `return_to`; any other value of that header is ignored.
    #[serde(default)]
    pub forwarded_hosts: Vec<String>,
}

fn default_code() -> u32 {
    302
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub to: String,
    pub code: u32,
    pub return_to_query_param: Option<String>,
    /// Lowercase.
    pub forwarded_hosts: Vec<String>,
}

impl Redirect {
    pub fn from_config(c: &RedirectConfig) -> Result<Redirect, Invalid> {
        if c.to.is_empty() {
            return Err(Invalid::new("to", Kind::Missing));
        }
        if c.to.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(Invalid::new(
                "to",
                Kind::Explained("must be a URI without spaces or control characters"),
            ));
        }
        let param = &c.return_to_query_param;
        if !param
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b",._~-".contains(&b))
        {
            return Err(Invalid::new(
                "return_to_query_param",
                Kind::Explained("must match ^[A-Za-z0-9,._~-]*$"),
            ));
        }
        let mut forwarded_hosts = Vec::with_capacity(c.forwarded_hosts.len());
        for host in &c.forwarded_hosts {
            let legal = |b: u8| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b);
            if host.is_empty() || !host.bytes().all(legal) {
                return Err(Invalid::new(
                    "forwarded_hosts",
                    Kind::Parse(format!(
                        "{host:?} is not a host[:port] (letters, digits, - . _ : [ ])"
                    )),
                ));
            }
            forwarded_hosts.push(host.to_ascii_lowercase());
        }
        Ok(Redirect {
            forwarded_hosts,
            to: c.to.clone(),
            // Oathkeeper turns any code other than 301 into 302.
            code: if c.code == 301 { 301 } else { 302 },
            return_to_query_param: (!param.is_empty()).then(|| param.clone()),
        })
    }

    /// `current_url` is the URL the caller asked for, as matched (`scheme://host/path?query`).
    pub fn reply(&self, current_url: &str, request: Option<&Request>) -> Reply {
        let mut location = self.to.clone();
        if let Some(param) = &self.return_to_query_param {
            let (base, fragment) = match location.split_once('#') {
                Some((b, f)) => (b.to_string(), Some(f.to_string())),
                None => (location.clone(), None),
            };
            location = base;
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(param);
            location.push('=');
            location.push_str(&query_escape(
                &self.return_to(current_url, request.map(|r| &r.headers)),
            ));
            if let Some(f) = fragment {
                location.push('#');
                location.push_str(&f);
            }
        }
        Reply {
            status: self.code,
            headers: vec![("location".to_string(), location)],
            body: String::new(),
        }
    }

    /// The matched URL with the forwarded headers the module doc allows applied: Oathkeeper's
    /// `extractURL` (an empty header counts as absent; `X-Forwarded-Uri` replaces the path
    /// whole, its `?` escaped, and the request's own query stays).
    fn return_to(&self, current_url: &str, headers: Option<&Headers>) -> String {
        let header = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let (scheme, rest) = current_url.split_once("://").unwrap_or(("", current_url));
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(host_end);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        let scheme = match header("x-forwarded-proto").map(str::to_ascii_lowercase) {
            Some(p) if p == "http" || p == "https" => p,
            _ => scheme.to_string(),
        };
        let host = match header("x-forwarded-host").map(str::to_ascii_lowercase) {
            Some(h) if self.forwarded_hosts.contains(&h) => h,
            _ => host.to_string(),
        };
        let mut out = format!("{scheme}://{host}");
        match header("x-forwarded-uri") {
            Some(uri) => {
                if !uri.starts_with('/') {
                    out.push('/');
                }
                go_escape_path(&mut out, uri);
            }
            None => out.push_str(path),
        }
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

/// Go's `url.PathEscape`-like escaping of `URL.Path` in `URL.String` (`shouldEscape` in
/// `encodePath` mode): unreserved characters and `$&+,/:;=@` stay, everything else, `?` and `%`
/// included, is percent-encoded.
fn go_escape_path(out: &mut String, path: &str) {
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b) {
            out.push(char::from(b));
        } else {
            push_encoded(out, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(forwarded_hosts: &[&str]) -> Redirect {
        let c: RedirectConfig = serde_json::from_value(serde_json::json!({
            "to": "https://auth.test/login",
            "return_to_query_param": "return_to",
            "forwarded_hosts": forwarded_hosts,
        }))
        .unwrap();
        Redirect::from_config(&c).unwrap()
    }

    fn return_to(r: &Redirect, url: &str, headers: &[(&str, &str)]) -> String {
        let headers = Headers::new(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        r.return_to(url, Some(&headers))
    }

    /// Oathkeeper's `TestErrorRedirect` cases, with the host allowed.
    #[test]
    fn forwarded_headers_build_return_to_as_oathkeeper() {
        let r = redirect(&["test.dev"]);
        assert_eq!(return_to(&r, "http://ory.sh/foo", &[]), "http://ory.sh/foo");
        assert_eq!(
            return_to(&r, "http://ory.sh/foo", &[("x-forwarded-proto", "https")]),
            "https://ory.sh/foo"
        );
        assert_eq!(
            return_to(
                &r,
                "http://ory.sh/foo",
                &[
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "test.dev"),
                    ("x-forwarded-uri", "/bar"),
                ]
            ),
            "https://test.dev/bar"
        );
        assert_eq!(
            return_to(
                &r,
                "http://ory.sh/foo?a=b",
                &[("x-forwarded-uri", "/b r?c")]
            ),
            "http://ory.sh/b%20r%3Fc?a=b"
        );
        assert_eq!(
            return_to(&r, "http://ory.sh/foo", &[("x-forwarded-uri", "bar")]),
            "http://ory.sh/bar"
        );
    }

    #[test]
    fn a_forwarded_host_must_be_allowed() {
        let none = redirect(&[]);
        assert_eq!(
            return_to(
                &none,
                "http://ory.sh/foo",
                &[("x-forwarded-host", "evil.com")]
            ),
            "http://ory.sh/foo"
        );
        let some = redirect(&["app.example.com", "App.Example.com:8443"]);
        assert_eq!(
            return_to(
                &some,
                "http://ory.sh/foo",
                &[("x-forwarded-host", "evil.com")]
            ),
            "http://ory.sh/foo"
        );
        assert_eq!(
            return_to(
                &some,
                "http://ory.sh/foo",
                &[("x-forwarded-host", "APP.example.com:8443")]
            ),
            "http://app.example.com:8443/foo"
        );
        // The path cannot smuggle another authority: it stays under the host.
        assert_eq!(
            return_to(
                &none,
                "http://ory.sh/foo",
                &[("x-forwarded-uri", "@evil.com/x")]
            ),
            "http://ory.sh/@evil.com/x"
        );
        assert_eq!(
            return_to(
                &none,
                "http://ory.sh/foo",
                &[("x-forwarded-uri", "//evil.com/x")]
            ),
            "http://ory.sh//evil.com/x"
        );
    }

    #[test]
    fn only_http_and_https_are_schemes() {
        let r = redirect(&[]);
        for proto in ["javascript", "https, http", "ftp", ""] {
            assert_eq!(
                return_to(&r, "http://ory.sh/foo", &[("x-forwarded-proto", proto)]),
                "http://ory.sh/foo",
                "{proto}"
            );
        }
        assert_eq!(
            return_to(&r, "https://ory.sh/foo", &[("x-forwarded-proto", "HTTP")]),
            "http://ory.sh/foo"
        );
    }

    #[test]
    fn forwarded_hosts_must_be_hosts() {
        for bad in ["", "evil.com/x", "a b", "user@host"] {
            let c: RedirectConfig = serde_json::from_value(serde_json::json!({
                "to": "https://auth.test/", "forwarded_hosts": [bad],
            }))
            .unwrap();
            assert!(Redirect::from_config(&c).is_err(), "{bad:?}");
        }
    }
}
