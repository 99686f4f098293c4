//! The authentication session handlers read and write; `template::context` exposes it to
//! templates with Oathkeeper's field names (`.Subject`, `.Extra`, `.Header`, `.MatchContext.…`).

use super::request::Headers;

/// The matched URL: scheme, authority, the cleaned and decoded path, the raw query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url<'r> {
    pub scheme: &'r str,
    pub host: &'r str,
    pub path: &'r str,
    pub query: Query<'r>,
}

/// `url.Values` over the raw query: `.Get "name"` decodes on lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'r>(pub &'r str);

impl Query<'_> {
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (super::percent::query_unescape(k)? == key)
                .then(|| super::percent::query_unescape(v))?
        })
    }
}

impl Url<'_> {
    pub fn write(&self, out: &mut String) {
        out.push_str(self.scheme);
        out.push_str("://");
        out.push_str(self.host);
        out.push_str(&super::percent::encode_path(self.path));
        if !self.query.0.is_empty() {
            out.push('?');
            out.push_str(self.query.0);
        }
    }

    /// The host without its port or IPv6 brackets (Go's `URL.Hostname`).
    pub fn hostname(&self) -> &str {
        match self.host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => self.host,
        }
        .trim_start_matches('[')
        .trim_end_matches(']')
    }
}

#[derive(Debug, Clone)]
pub struct MatchContext<'r> {
    pub captures: &'r [String],
    pub url: Url<'r>,
    pub method: &'r str,
    pub header: &'r Headers,
}

/// What authenticators produce and mutators add to.
#[derive(Debug, Clone)]
pub struct Session<'r> {
    pub subject: String,
    /// A JSON object (empty when the authenticator has no extra data), shared with the cache.
    pub extra: std::sync::Arc<serde_json::Value>,
    /// Headers set by the authorizer and mutators so far, with the names they were given.
    pub header: Headers,
    pub match_context: MatchContext<'r>,
}
