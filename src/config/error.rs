//! Why a configuration is refused. Every message names where (rule id and field, or config
//! path) and why, because it is what the operator reads in Envoy's log.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Not valid YAML or JSON, or not the expected shape.
    Syntax(String),
    /// A problem outside any rule; `path` is the config key.
    Field { path: String, reason: Box<Invalid> },
    /// A problem in one rule: `field` names the rule's field (and handler, for handler config).
    Rule {
        rule: String,
        field: String,
        reason: Box<Invalid>,
    },
}

impl ConfigError {
    pub fn field(path: impl Into<String>, reason: impl Into<Invalid>) -> ConfigError {
        ConfigError::Field {
            path: path.into(),
            reason: Box::new(reason.into()),
        }
    }

    pub fn rule(rule: &str, field: impl Into<String>, reason: impl Into<Invalid>) -> ConfigError {
        ConfigError::Rule {
            rule: rule.to_string(),
            field: field.into(),
            reason: Box::new(reason.into()),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Syntax(e) => write!(f, "configuration is not valid YAML or JSON: {e}"),
            ConfigError::Field { path, reason } => write!(f, "{path}: {reason}"),
            ConfigError::Rule {
                rule,
                field,
                reason,
            } => write!(f, "rule {rule:?}: {field}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}
