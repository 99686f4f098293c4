//! Percent-encoding, shared by path normalisation, redirects and templates.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `%XY` for `b`.
pub fn push_encoded(out: &mut String, b: u8) {
    out.push('%');
    for nibble in [b >> 4, b & 15] {
        out.push(HEX.get(usize::from(nibble)).map_or('0', |&h| char::from(h)));
    }
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, everything else `%XY`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => push_encoded(&mut out, b),
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space; `None` for a bad escape or non-UTF-8 result.
pub fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 3986 `pchar` without `%`, and `/`: the bytes a path carries as they are.
pub fn keeps_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

/// Percent-encodes every byte outside RFC 3986 `pchar` and `/`, so the upstream decodes the
/// exact path that was matched.
pub fn encode_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.bytes().all(keeps_raw) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for b in path.bytes() {
        if keeps_raw(b) {
            out.push(char::from(b));
        } else {
            push_encoded(&mut out, b);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_escape_matches_go() {
        assert_eq!(
            super::query_escape("http://a/b?c=d e"),
            "http%3A%2F%2Fa%2Fb%3Fc%3Dd+e"
        );
    }
}
