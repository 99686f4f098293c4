//! Where rules come from: `access_rules.rules` inline, `inline://` repositories, and
//! oathkeeper-maester `Rule` resources. Anything that would need the filter to read files or
//! fetch URLs at load time is refused with a pointer to inlining.

use super::error::ConfigError;
use super::raw::RawRule;
use super::{Invalid, Kind};
use base64::Engine;
use serde_json::Value;

/// Decodes an `inline://` repository into its rule documents.
pub fn load_repository(url: &str) -> Result<Vec<Value>, ConfigError> {
    let field = "access_rules.repositories";
    let Some(encoded) = url.strip_prefix("inline://") else {
        return Err(ConfigError::field(
            field,
            Invalid::new(
                format!("{url:?}"),
                Kind::Explained(
                    "a proxy filter cannot read files or fetch rules at load time; put the \
                     rules under access_rules.rules, or as inline://<base64 of the rules file>",
                ),
            ),
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            ConfigError::field(
                field,
                Kind::Parse(format!("inline:// is not valid base64: {e}")),
            )
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::field(field, Kind::Explained("inline:// does not decode to UTF-8"))
    })?;
    match super::parse_document(&text)? {
        Value::Array(rules) => Ok(rules),
        _ => Err(ConfigError::field(
            field,
            Kind::Explained("inline:// must hold a JSON or YAML array of rules"),
        )),
    }
}

/// Reads one element of `rules`: an Oathkeeper rule, or a maester `Rule` resource whose id
/// defaults to `metadata.name`.
pub fn read_rule(index: usize, doc: Value) -> Result<RawRule, ConfigError> {
    let fallback_id = format!("rules[{index}]");
    let (doc, name) = match doc {
        Value::Object(mut map) if map.contains_key("apiVersion") || map.contains_key("kind") => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            let api = map
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind != "Rule" || !api.starts_with("oathkeeper.ory.sh/") {
                return Err(ConfigError::rule(
                    &fallback_id,
                    "kind",
                    Kind::Parse(format!(
                        "expected an oathkeeper.ory.sh Rule resource, got {api} {kind}"
                    )),
                ));
            }
            let name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            (map.remove("spec").unwrap_or(Value::Null), name)
        }
        other => (other, None),
    };
    let id_hint = doc
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(name.clone())
        .unwrap_or_else(|| fallback_id.clone());
    let mut rule: RawRule = serde_json::from_value(doc)
        .map_err(|e| ConfigError::rule(&id_hint, "rule", Invalid::shape(e)))?;
    if rule.id.is_empty() {
        rule.id = name.unwrap_or(fallback_id);
    }
    Ok(rule)
}
