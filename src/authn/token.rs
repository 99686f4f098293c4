//! Where a token is read from (`token_from`), with Oathkeeper's rules: by default the
//! `Authorization: Bearer` value; a named header raw; a query parameter; a cookie.

use crate::config::{Invalid, Kind};
use crate::vocab::cookies::cookie;
use crate::vocab::request::Headers;
use crate::vocab::session::Query;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenFrom {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub query_parameter: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
}

impl TokenFrom {
    pub fn validate(&self) -> Result<(), Invalid> {
        let set = [&self.header, &self.query_parameter, &self.cookie]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set != 1 {
            return Err(Invalid::new(
                "token_from",
                Kind::Explained("set exactly one of header, query_parameter, cookie"),
            ));
        }
        Ok(())
    }
}

/// The token, or `None` when there is none (the authenticator is then not responsible).
pub fn extract(from: Option<&TokenFrom>, headers: &Headers, query: Query<'_>) -> Option<String> {
    let bearer = |h: &Headers| {
        let value = h.get("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.to_string())
    };
    let token = match from {
        None => bearer(headers),
        Some(TokenFrom {
            header: Some(h), ..
        }) if h == "Authorization" => bearer(headers),
        Some(TokenFrom {
            header: Some(h), ..
        }) => headers.get(h).map(str::to_string),
        Some(TokenFrom {
            query_parameter: Some(q),
            ..
        }) => query.get(q),
        Some(TokenFrom {
            cookie: Some(c), ..
        }) => cookie(headers, c).map(str::to_string),
        Some(_) => None,
    };
    token.filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn oathkeeper_token_locations() {
        let q = Query("token=q1&x=2");
        assert_eq!(
            extract(None, &h(&[("authorization", "Bearer abc")]), q),
            Some("abc".into())
        );
        assert_eq!(
            extract(None, &h(&[("authorization", "bearer abc")]), q),
            Some("abc".into())
        );
        assert_eq!(
            extract(None, &h(&[("authorization", "Basic abc")]), q),
            None
        );
        assert_eq!(extract(None, &h(&[("authorization", "Bearer")]), q), None);
        let header = |n: &str| TokenFrom {
            header: Some(n.into()),
            query_parameter: None,
            cookie: None,
        };
        let raw = h(&[("authorization", "Bearer abc"), ("x-session-token", "tok")]);
        assert_eq!(
            extract(Some(&header("X-Session-Token")), &raw, q),
            Some("tok".into())
        );
        assert_eq!(
            extract(Some(&header("Authorization")), &raw, q),
            Some("abc".into())
        );
        // (inferred) a lowercase name takes the raw-header path, Bearer prefix included.
        assert_eq!(
            extract(Some(&header("authorization")), &raw, q),
            Some("Bearer abc".into())
        );
        let query = TokenFrom {
            header: None,
            query_parameter: Some("token".into()),
            cookie: None,
        };
        assert_eq!(extract(Some(&query), &raw, q), Some("q1".into()));
        let cookie = TokenFrom {
            header: None,
            query_parameter: None,
            cookie: Some("sid".into()),
        };
        assert_eq!(
            extract(Some(&cookie), &h(&[("cookie", "sid=s1")]), q),
            Some("s1".into())
        );
    }
}
