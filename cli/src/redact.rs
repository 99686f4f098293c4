//! Keeping credentials out of `explain`'s output unless the configuration sets
//! `log.leak_sensitive_values`, as the filter keeps them out of its logs: credential headers
//! show only their scheme, the request's credentials are masked wherever they reappear (a
//! forwarded header, a query), and callout bodies are summarised.

use portcullis::vocab::request::CREDENTIAL_HEADERS;

/// Header or parameter names that carry a credential of some kind.
const SECRET_WORDS: &[&str] = &["token", "secret", "session", "password", "key"];

const MASK: &str = "<redacted>";

pub struct Redactor {
    leak: bool,
    /// Values from the request that must not be shown, longest first.
    secrets: Vec<String>,
}

impl Redactor {
    /// `headers` are the request's; `query` its raw query string.
    pub fn new(leak: bool, headers: &[(String, String)], query: &str) -> Redactor {
        let mut secrets = Vec::new();
        for (name, value) in headers {
            if is_credential(name) {
                secrets.push(value.clone());
                // The token after the scheme, and each cookie's value, travel on their own.
                if let Some((_, token)) = value.split_once(' ') {
                    secrets.push(token.trim().to_string());
                }
                if name == "cookie" {
                    for pair in value.split(';') {
                        if let Some((_, v)) = pair.split_once('=') {
                            secrets.push(v.trim().to_string());
                        }
                    }
                }
            }
        }
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if is_credential(k) {
                    secrets.push(v.to_string());
                }
            }
        }
        // Short values would mask unrelated text.
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { leak, secrets }
    }

    pub fn header(&self, name: &str, value: &str) -> String {
        if self.leak {
            return value.to_string();
        }
        if CREDENTIAL_HEADERS.contains(&name) {
            return match value.split_once(' ') {
                Some((scheme, _)) if name.ends_with("authorization") => format!("{scheme} {MASK}"),
                _ if name.ends_with("cookie") => value
                    .split(';')
                    .map(|c| match c.split_once('=') {
                        Some((k, _)) => format!("{}={MASK}", k.trim()),
                        None => MASK.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => MASK.to_string(),
            };
        }
        self.text(value)
    }

    /// `text` with every request credential in it masked.
    pub fn text(&self, text: &str) -> String {
        if self.leak {
            return text.to_string();
        }
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), MASK);
        }
        out
    }

    /// A callout body. A JSON payload (a policy check) is shown with the request's credentials
    /// masked; anything else (a form with a token or a client secret) only when the
    /// configuration allows sensitive values.
    pub fn body(&self, body: &[u8]) -> String {
        if self.leak {
            return String::from_utf8_lossy(body).into_owned();
        }
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
            return self.text(&json.to_string());
        }
        format!(
            "<{} bytes, redacted; log.leak_sensitive_values: true shows it>",
            body.len()
        )
    }
}

fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.starts_with(':')
        && (CREDENTIAL_HEADERS.contains(&name.as_str())
            || SECRET_WORDS.iter().any(|w| name.contains(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_where_they_reappear() {
        let headers = vec![
            (
                "cookie".to_string(),
                "ory_kratos_session=abcdef; theme=dark".to_string(),
            ),
            ("authorization".to_string(), "Bearer tok-12345".to_string()),
        ];
        let r = Redactor::new(false, &headers, "api_key=qwerty&page=2");
        assert_eq!(
            r.header("cookie", "ory_kratos_session=abcdef; theme=dark"),
            "ory_kratos_session=<redacted>; theme=<redacted>"
        );
        assert_eq!(
            r.header("authorization", "Bearer tok-12345"),
            "Bearer <redacted>"
        );
        assert_eq!(r.header("x-forwarded", "was tok-12345"), "was <redacted>");
        assert_eq!(
            r.text("/x?api_key=qwerty&page=2"),
            "/x?api_key=<redacted>&page=2"
        );
        assert!(!r.body(b"token=tok-12345").contains("tok"));
        assert_eq!(
            r.body(br#"{"t": "tok-12345", "s": "u1"}"#),
            r#"{"s":"u1","t":"<redacted>"}"#
        );
        let leaky = Redactor::new(true, &headers, "");
        assert_eq!(
            leaky.header("authorization", "Bearer tok-12345"),
            "Bearer tok-12345"
        );
    }
}
