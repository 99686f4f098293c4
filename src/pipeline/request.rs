//! The request view the core decides on: pseudo-headers split out, header values checked as
//! UTF-8, names lowercase (as Envoy hands them over).

use crate::errors::PipelineError;

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
    pub method: String,
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
                .map_err(|_| PipelineError::BadRequest(format!("header {name} is not UTF-8")))?;
            match name.as_str() {
                ":method" => method = Some(value),
                ":scheme" => scheme = Some(value),
                ":authority" => authority = Some(value),
                ":path" => path = Some(value),
                n if n.starts_with(':') => {}
                _ => headers.push((name, value)),
            }
        }
        let missing = |what: &str| PipelineError::BadRequest(format!("request has no {what}"));
        let authority = authority
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing(":authority"))?;
        Ok(Request {
            method: method.ok_or_else(|| missing(":method"))?,
            scheme: scheme.unwrap_or_else(|| "http".to_string()),
            authority,
            path: path.ok_or_else(|| missing(":path"))?,
            headers: Headers(headers),
            remote_addr: None,
        })
    }
}
