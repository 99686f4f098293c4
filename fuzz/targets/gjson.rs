//! The GJSON paths of `subject_from` / `extra_from`: `path \0 json`. A path parses or is
//! refused, and a parsed plain dotted path finds what walking the document by hand finds.

use portcullis::authn::gjson::Path;
use serde_json::Value;

/// The walk `a.b.0.#` describes, for paths without escapes.
fn walk(doc: &Value, path: &str) -> Option<Value> {
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        cur = match cur {
            Value::Object(m) => m.get(*part)?,
            Value::Array(a) if *part == "#" && i + 1 == parts.len() => {
                return Some(Value::from(a.len()))
            }
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

pub fn gjson(data: &[u8]) {
    let f = super::fields(data, 2);
    let (path, doc) = (&f[0], &f[1]);
    let doc: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    let parsed = Path::parse(path);
    let special = path.contains(['*', '?', '|', '@']);
    if !path.contains('\\') && path != "@this" {
        assert_eq!(parsed.is_ok(), !path.is_empty() && !special, "{path:?}");
    }
    let Ok(p) = parsed else { return };
    let got = p.get(&doc).map(|v| v.into_owned());
    if path == "@this" {
        assert_eq!(got.as_ref(), Some(&doc));
    } else if !path.contains('\\') {
        assert_eq!(got, walk(&doc, path), "{path:?}");
    }
}
