//! Reading cookies from `Cookie` headers (HTTP/2 may split them across several).

use crate::vocab::request::Headers;

/// Every `(name, value)` pair, in order; quoted values are unquoted.
pub fn cookies(headers: &Headers) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (!name.trim().is_empty()).then(|| (name.trim(), value))
        })
}

pub fn cookie<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_quoted_cookies() {
        let h = Headers::new(vec![
            ("cookie".into(), "a=1; ory_kratos_session=\"abc\"".into()),
            ("cookie".into(), "b=2;;=x".into()),
        ]);
        let all: Vec<_> = cookies(&h).collect();
        assert_eq!(
            all,
            vec![("a", "1"), ("ory_kratos_session", "abc"), ("b", "2")]
        );
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
