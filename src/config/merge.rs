//! Oathkeeper's handler config merge: the rule's `config` over the global one, objects key by
//! key, scalars and arrays replaced.

use serde_json::Value;

pub fn deep_merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (b, Value::Null) => b.clone(),
        (_, o) => o.clone(),
    }
}

/// A handler config that was never given reads as `{}`, so serde defaults apply.
pub fn or_empty(config: Value) -> Value {
    match config {
        Value::Null => Value::Object(Default::default()),
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_and_the_rest_is_replaced() {
        let base = json!({"a": {"x": 1, "y": [1, 2]}, "s": "g", "keep": true});
        let over = json!({"a": {"y": [3], "z": 2}, "s": "r"});
        assert_eq!(
            deep_merge(&base, &over),
            json!({"a": {"x": 1, "y": [3], "z": 2}, "s": "r", "keep": true})
        );
        assert_eq!(deep_merge(&base, &Value::Null), base);
        assert_eq!(deep_merge(&Value::Null, &json!({"a": 1})), json!({"a": 1}));
    }
}
