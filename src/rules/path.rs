//! Request path normalisation: the path rules match is the path the upstream receives.
//!
//! Oathkeeper matches Go's decoded `URL.Path` after `path.Clean`. We do the same, refuse the
//! forms an upstream could read differently (backslashes, double-encoded separators, `..;`
//! segments, control bytes), and forward the cleaned path re-encoded, so what was matched is
//! exactly what the upstream decodes.

use crate::vocab::percent::{encode_path, keeps_raw};
use std::borrow::Cow;

/// Why a path is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not an origin-form target starting with `/`.
    NotOriginForm,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// Decodes to bytes that are not UTF-8.
    NotUtf8,
    /// Decodes to a control byte (NUL, CR, LF, …).
    ControlByte,
    /// Contains `\` raw or encoded: some servers treat it as `/`.
    Backslash,
    /// Contains an encoded `.`, `/` or `\` after decoding once: double encoding.
    DoubleEncoded,
    /// A `.` or `..` segment carrying `;` parameters, which some servers resolve.
    DotSegmentParams,
    /// A fragment in the request target.
    Fragment,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathError::NotOriginForm => "the request path does not start with /",
            PathError::BadEscape => "the request path has an invalid percent-encoding",
            PathError::NotUtf8 => "the request path does not decode to UTF-8",
            PathError::ControlByte => "the request path contains a control character",
            PathError::Backslash => "the request path contains a backslash",
            PathError::DoubleEncoded => "the request path is double-encoded",
            PathError::DotSegmentParams => "the request path has a dot segment with parameters",
            PathError::Fragment => "the request target contains a fragment",
        })
    }
}

impl std::error::Error for PathError {}

/// A request target split and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    /// Decoded and cleaned: what rules match and templates see as `.URL.Path`.
    pub path: Cow<'a, str>,
    /// The raw query, without `?`.
    pub query: Option<&'a str>,
    /// The `:path` to send upstream when it differs from the one received.
    pub rewrite: Option<String>,
}

pub fn normalize(target: &str) -> Result<NormalizedPath<'_>, PathError> {
    let (raw, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if !raw.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    if target.contains('#') {
        return Err(PathError::Fragment);
    }
    if plain(raw) {
        return Ok(NormalizedPath {
            path: Cow::Borrowed(raw),
            query,
            rewrite: None,
        });
    }
    general(raw, query)
}

/// The common case in one pass: a path of bytes that travel raw, with no `%` or `;`, no empty
/// or dot-led segment and no trailing `/`, is already decoded and clean, and travels as it is.
fn plain(raw: &str) -> bool {
    let mut prev = 0;
    for &b in raw.as_bytes() {
        if b == b'%' || b == b';' || !keeps_raw(b) || (prev == b'/' && matches!(b, b'/' | b'.')) {
            return false;
        }
        prev = b;
    }
    raw == "/" || prev != b'/'
}

fn general<'a>(raw: &'a str, query: Option<&'a str>) -> Result<NormalizedPath<'a>, PathError> {
    let decoded = percent_decode(raw)?;
    check_decoded(&decoded)?;
    let cleaned = clean(decoded);
    let encoded = encode_path(&cleaned);
    let rewrite = if encoded == raw {
        None
    } else {
        let mut p = encoded.into_owned();
        if let Some(q) = query {
            p.push('?');
            p.push_str(q);
        }
        Some(p)
    };
    Ok(NormalizedPath {
        path: cleaned,
        query,
        rewrite,
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(PathError::BadEscape),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::NotUtf8)
}

fn check_decoded(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0..=0x1f | 0x7f => return Err(PathError::ControlByte),
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let pair = (bytes.get(i + 1).copied(), bytes.get(i + 2).copied());
                if let (Some(h), Some(l)) = pair {
                    if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                        if matches!(h << 4 | l, b'.' | b'/' | b'\\') {
                            return Err(PathError::DoubleEncoded);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for segment in path.split('/') {
        if let Some((name, _params)) = segment.split_once(';') {
            if name == "." || name == ".." {
                return Err(PathError::DotSegmentParams);
            }
        }
    }
    Ok(())
}

fn is_clean(path: &str) -> bool {
    path == "/"
        || (!path.ends_with('/')
            && !path.contains("//")
            && !path.contains("/./")
            && !path.contains("/../")
            && !path.ends_with("/.")
            && !path.ends_with("/.."))
}

/// Go's `path.Clean` for a rooted path: `.` and empty segments dropped, `..` pops, no trailing
/// slash except for the root.
fn clean(path: Cow<'_, str>) -> Cow<'_, str> {
    if is_clean(&path) {
        return path;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> (String, Option<String>) {
        let n = normalize(p).unwrap();
        (n.path.into_owned(), n.rewrite)
    }

    /// The one-pass case agrees with the general one wherever it applies.
    #[test]
    fn plain_paths_normalise_as_the_general_case_does() {
        let pieces = [
            "/", "a", ".", "..", "%2e", ";", "~", "-", "_", "//", "x.y", "é", "\\", "@",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut plain_seen = 0;
        for _ in 0..20_000 {
            let mut path = String::from("/");
            for _ in 0..(state % 7) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                path.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            if plain(&path) {
                plain_seen += 1;
                assert_eq!(
                    general(&path, None)
                        .as_ref()
                        .map(|n| (&*n.path, &n.rewrite)),
                    Ok((path.as_str(), &None)),
                    "{path:?}"
                );
            }
        }
        assert!(plain_seen > 1_000, "{plain_seen}");
    }

    #[test]
    fn clean_paths_are_borrowed_and_not_rewritten() {
        let n = normalize("/a/b?x=1").unwrap();
        assert!(matches!(n.path, Cow::Borrowed("/a/b")));
        assert_eq!(n.query, Some("x=1"));
        assert_eq!(n.rewrite, None);
        assert_eq!(norm("/"), ("/".into(), None));
    }

    #[test]
    fn traversal_forms_resolve_before_matching_and_forwarding() {
        assert_eq!(norm("/a/../b"), ("/b".into(), Some("/b".into())));
        assert_eq!(
            norm("/public/../admin/x?q=1").1,
            Some("/admin/x?q=1".into())
        );
        assert_eq!(norm("//x//y"), ("/x/y".into(), Some("/x/y".into())));
        assert_eq!(norm("/a/./b/"), ("/a/b".into(), Some("/a/b".into())));
        assert_eq!(norm("/../../etc"), ("/etc".into(), Some("/etc".into())));
        assert_eq!(
            norm("/%2e%2e/admin"),
            ("/admin".into(), Some("/admin".into()))
        );
        assert_eq!(norm("/a%2Fb"), ("/a/b".into(), Some("/a/b".into())));
        assert_eq!(norm("/a/%2E/b"), ("/a/b".into(), Some("/a/b".into())));
        assert_eq!(norm("/.."), ("/".into(), Some("/".into())));
    }

    #[test]
    fn forwarded_path_keeps_characters_that_must_stay_encoded() {
        assert_eq!(norm("/a%3Fb"), ("/a?b".into(), None));
        assert_eq!(
            norm("/a%20b/..//c%3F"),
            ("/c?".into(), Some("/c%3F".into()))
        );
        assert_eq!(
            norm("/caf%c3%a9"),
            ("/café".into(), Some("/caf%C3%A9".into()))
        );
        assert_eq!(norm("/%41"), ("/A".into(), Some("/A".into())));
        assert_eq!(norm("/a%25b"), ("/a%b".into(), None));
    }

    #[test]
    fn ambiguous_forms_are_refused() {
        for (p, e) in [
            ("/a\\..\\admin", PathError::Backslash),
            ("/a%5C..%5Cadmin", PathError::Backslash),
            ("/%252e%252e/admin", PathError::DoubleEncoded),
            ("/a%252Fb", PathError::DoubleEncoded),
            ("/public/..;/admin", PathError::DotSegmentParams),
            ("/public/.;x=1/admin", PathError::DotSegmentParams),
            ("/a%00b", PathError::ControlByte),
            ("/a%0d%0aX-Evil:%201", PathError::ControlByte),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/a%ff", PathError::NotUtf8),
            ("a/b", PathError::NotOriginForm),
            ("*", PathError::NotOriginForm),
            ("", PathError::NotOriginForm),
            ("/a#frag", PathError::Fragment),
        ] {
            assert_eq!(normalize(p), Err(e), "{p}");
        }
    }

    #[test]
    fn normalisation_is_idempotent() {
        for p in [
            "/a/../b/./c//d/",
            "/%2e/x%20y",
            "/caf%C3%A9/..",
            "/x?y=/../",
            "/a%3Fb",
        ] {
            let first = normalize(p).unwrap();
            let forwarded = first.rewrite.clone().unwrap_or_else(|| p.to_string());
            let second = normalize(&forwarded).unwrap();
            assert_eq!(second.path, first.path, "{p}");
            assert_eq!(second.rewrite, None, "{p}");
        }
    }
}
