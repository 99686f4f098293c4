//! What a cached value weighs: the bytes it keeps on the heap, roughly, so that a cache's byte
//! bound holds whatever the entries are. An estimate (allocator overhead is not counted), cheap
//! enough for the request path: JSON is walked, never serialised.

use serde_json::Value;

/// A value a bounded cache can hold.
pub trait Weigh {
    /// About how many bytes it keeps alive, itself included.
    fn bytes(&self) -> usize;
}

impl Weigh for String {
    fn bytes(&self) -> usize {
        24 + self.len()
    }
}

/// A digest key.
impl Weigh for [u8; 32] {
    fn bytes(&self) -> usize {
        32
    }
}

/// A key kept whole (a verified token), shared by the map and its entry.
impl Weigh for std::sync::Arc<str> {
    fn bytes(&self) -> usize {
        16 + self.len()
    }
}

/// About how many bytes a JSON tree keeps on the heap: its strings and keys, and a node's
/// header for every value.
pub fn json_bytes(value: &Value) -> usize {
    const NODE: usize = 32;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
        Value::String(s) => NODE + s.len(),
        Value::Array(items) => NODE + items.iter().map(json_bytes).sum::<usize>(),
        Value::Object(map) => {
            NODE + map
                .iter()
                .map(|(k, v)| NODE + k.len() + json_bytes(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_weighs_about_its_text() {
        let doc: Value =
            serde_json::from_str(r#"{"identity":{"traits":{"email":"a@b.c","tags":[1,2]}}}"#)
                .unwrap();
        let text = doc.to_string().len();
        let weight = json_bytes(&doc);
        assert!(weight >= text && weight <= text * 8, "{weight} for {text}");
    }
}
