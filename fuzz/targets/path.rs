//! The path normaliser and percent-coding: `request-target \0 query-text`. A normalised path
//! forwarded upstream normalises to itself, never keeps `..` or `//`, and Go's query escaping
//! round-trips.

use portcullis::rules::path::normalize;
use portcullis::vocab::percent::{query_escape, query_unescape};

pub fn path(data: &[u8]) {
    let f = super::fields(data, 2);
    let (target, text) = (&f[0], &f[1]);
    assert_eq!(
        query_unescape(&query_escape(text)).as_deref(),
        Some(text.as_str())
    );
    let Ok(first) = normalize(target) else {
        return;
    };
    assert!(first.path.starts_with('/'), "{target:?} → {:?}", first.path);
    for bad in ["/../", "//", "/./", "\\"] {
        assert!(!first.path.contains(bad), "{target:?} → {:?}", first.path);
    }
    assert!(!first.path.ends_with("/..") && !first.path.ends_with("/."));
    let forwarded = first.rewrite.clone().unwrap_or_else(|| target.clone());
    let second = match normalize(&forwarded) {
        Ok(n) => n,
        Err(e) => panic!("{target:?} forwarded as {forwarded:?} is refused: {e}"),
    };
    assert_eq!(second.path, first.path, "{target:?} → {forwarded:?}");
    assert_eq!(
        second.rewrite, None,
        "{target:?} → {forwarded:?} is not stable"
    );
    assert_eq!(second.query, first.query, "{target:?}: the query changed");
}
