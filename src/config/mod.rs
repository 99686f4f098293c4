//! Reading a configuration: the document's shape (`raw`), the pieces handlers build from
//! (`clusters`, `duration`, `merge`, `cache_section`) and why a configuration is refused
//! (`ConfigError`). Compiling it into handlers is `filter::load`'s, one layer up.

pub mod cache_section;
pub mod clusters;
pub mod duration;
mod error;
mod invalid;
pub mod merge;
pub mod raw;
pub mod registry;
pub mod repositories;

pub use error::ConfigError;
pub use invalid::{Invalid, Kind};

use serde_json::Value;

/// Parses YAML or JSON (Istio hands over JSON) into a JSON value.
pub fn parse_document(text: &str) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Err(ConfigError::Syntax(
            "the configuration is empty".to_string(),
        ));
    }
    if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))
    } else {
        serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))
    }
}
