//! The GJSON paths `subject_from` and `extra_from` use: dotted keys, array indexes, `\.` for a
//! literal dot, `#` for an array's length, and `@this` for the whole document.

use crate::config::{Invalid, Kind};
use serde_json::Value;

/// A path split once at configure time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(Vec<String>);

impl Path {
    pub fn parse(path: &str) -> Result<Path, Invalid> {
        if path.is_empty() {
            return Err(Invalid::whole(Kind::Explained("the path is empty")));
        }
        if path == "@this" {
            return Ok(Path(Vec::new()));
        }
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = path.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let escaped = chars.next();
                    cur.push(
                        escaped.ok_or(Invalid::whole(Kind::Explained("the path ends with \\")))?,
                    )
                }
                '.' => parts.push(std::mem::take(&mut cur)),
                '*' | '?' | '|' | '@' => {
                    return Err(Invalid::whole(Kind::Parse(format!(
                    "{path:?}: wildcards, queries and modifiers other than @this are not supported"
                ))))
                }
                c => cur.push(c),
            }
        }
        parts.push(cur);
        Ok(Path(parts))
    }

    /// The value at the path; `None` when it does not exist.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<std::borrow::Cow<'a, Value>> {
        let mut cur = doc;
        let mut parts = self.0.iter().peekable();
        while let Some(part) = parts.next() {
            cur = match cur {
                Value::Object(m) => m.get(part)?,
                Value::Array(a) if part == "#" && parts.peek().is_none() => {
                    return Some(std::borrow::Cow::Owned(Value::from(a.len())))
                }
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(std::borrow::Cow::Borrowed(cur))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let doc = json!({"identity": {"id": "u1", "traits": {"email": "a@b"}, "tags": ["x", "y"]}, "a.b": 1});
        let get = |p: &str| Path::parse(p).unwrap().get(&doc).map(|v| v.into_owned());
        assert_eq!(get("identity.id"), Some(json!("u1")));
        assert_eq!(get("identity.tags.1"), Some(json!("y")));
        assert_eq!(get("identity.tags.#"), Some(json!(2)));
        assert_eq!(get("a\\.b"), Some(json!(1)));
        assert_eq!(get("@this"), Some(doc.clone()));
        assert_eq!(get("identity.missing"), None);
        assert_eq!(get("identity.id.deeper"), None);
        assert!(Path::parse("a.*").is_err());
        assert!(Path::parse("").is_err());
    }
}
