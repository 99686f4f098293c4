//! The request view the core decides on: pseudo-headers split out, header values checked as
//! UTF-8, names lowercase (as Envoy hands them over).

use crate::vocab::rejection::PipelineError;

/// Headers that carry a caller's credentials: never identity (anti-spoofing leaves them to the
/// client), never shown (the CLI masks them).
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-session-token",
];

/// Why a request cannot be matched safely (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// A header value the filter cannot read exactly (its name).
    NotUtf8(String),
    /// A pseudo-header the request lacks.
    Missing(&'static str),
    Authority,
    TwoAuthorizations,
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRequest::NotUtf8(name) => write!(f, "header {name} is not UTF-8"),
            BadRequest::Missing(what) => write!(f, "request has no {what}"),
            BadRequest::Authority => f.write_str("the authority is not host[:port]"),
            BadRequest::TwoAuthorizations => {
                f.write_str("the request has more than one Authorization header")
            }
        }
    }
}

impl std::error::Error for BadRequest {}

/// Request headers in arrival order. Names are lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Headers(pairs)
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: &str, value: String) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.push((name.to_string(), value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The parts of a request the pipeline reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Uppercase: what rules match and the upstream receives.
    pub method: String,
    /// The `:method` received was not uppercase: the upstream must be sent `method`.
    pub method_rewritten: bool,
    pub scheme: String,
    pub authority: String,
    /// `:path` as received: path and query, percent-encoded.
    pub path: String,
    /// Regular headers (no pseudo-headers).
    pub headers: Headers,
    /// The connection's peer, `ip:port`, when the filter asked the proxy for it.
    pub remote_addr: Option<String>,
}

impl Request {
    /// Builds the view from the raw header map a proxy hands over. Values must be UTF-8: a
    /// credential or identity header the pipeline cannot read exactly is refused, not guessed.
    pub fn from_header_map(pairs: Vec<(String, Vec<u8>)>) -> Result<Request, PipelineError> {
        let mut method = None;
        let mut scheme = None;
        let mut authority = None;
        let mut path = None;
        let mut headers = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let value = String::from_utf8(value)
                .map_err(|_| PipelineError::bad_request(BadRequest::NotUtf8(name.clone())))?;
            match name.as_str() {
                ":method" => method = Some(value),
                ":scheme" => scheme = Some(value),
                ":authority" => authority = Some(value),
                ":path" => path = Some(value),
                n if n.starts_with(':') => {}
                _ => headers.push((name, value)),
            }
        }
        let missing = |what| PipelineError::bad_request(BadRequest::Missing(what));
        let authority = authority
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing(":authority"))?;
        if !valid_authority(&authority) {
            return Err(PipelineError::bad_request(BadRequest::Authority));
        }
        let mut method = method.ok_or_else(|| missing(":method"))?;
        // Rules match methods case-insensitively; one upstream reads `gEt` as GET, another as
        // some other method. It gets the uppercase form that was matched (Envoy's HTTP/1 codec
        // refuses `gEt` itself, its HTTP/2 codec passes it).
        let method_rewritten = method.bytes().any(|b| b.is_ascii_lowercase());
        // The filter would check one credential and the upstream might read the other.
        if headers.iter().filter(|(k, _)| k == "authorization").count() > 1 {
            return Err(PipelineError::bad_request(BadRequest::TwoAuthorizations));
        }
        method.make_ascii_uppercase();
        Ok(Request {
            method,
            method_rewritten,
            scheme: scheme.unwrap_or_else(|| "http".to_string()),
            authority,
            path: path.ok_or_else(|| missing(":path"))?,
            headers: Headers(headers),
            remote_addr: None,
        })
    }
}

/// `host[:port]` without user info: a name of letters, digits and `-._~` that does not end in
/// a dot, or a bracketed IP literal. `a@b`, `a,b` (two Host headers Envoy joined), a trailing
/// dot or a percent-escape could be read by an upstream as another host than the one matched.
fn valid_authority(authority: &str) -> bool {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, after)) => (
                !ip.is_empty()
                    && ip
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
                match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if after.is_empty() => None,
                    None => return false,
                },
            ),
            None => return false,
        },
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let name = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            (
                name && !host.is_empty() && !host.starts_with('.') && !host.ends_with('.'),
                port,
            )
        }
    };
    host_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::valid_authority;

    #[test]
    fn authorities_an_upstream_could_read_as_another_host_are_refused() {
        for ok in [
            "echo.example.com",
            "ECHO.example.com:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:80",
            "a_b",
        ] {
            assert!(valid_authority(ok), "{ok}");
        }
        for bad in [
            "echo.example.com@evil.com",
            "evil.com,echo.example.com",
            "echo.example.com.",
            ".example.com",
            "echo%2eexample.com",
            "echo.example.com:",
            "echo.example.com:80:80",
            "echo.example.com:http",
            "echo.example.com:123456",
            "[::1",
            "[]",
            "[::1]x",
            "echo.example.com/x",
            "echo.example.com\\x",
            "echo.example.com x",
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
    }
}
