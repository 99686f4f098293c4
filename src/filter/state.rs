//! `filter_state`: the facts about a decided request portcullis hands to the rest of Envoy
//! (`wasm.portcullis.<key>`), beyond the built-in four: operator keys rendered from templates.

use crate::template::{Template, TemplateError};
use std::collections::BTreeMap;

/// The keys portcullis always sets on a decided request (those it knows).
pub const BUILT_IN: [&str; 4] = ["subject", "rule", "decision", "authenticator"];

/// The longest key name.
const MAX_NAME: usize = 64;

/// One operator key: its name and the template that renders its value.
#[derive(Debug, Clone)]
pub struct StateKey {
    pub name: String,
    pub template: Template,
}

/// Why a `filter_state` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateKeyError {
    BadName(String),
    Reserved(String),
    Template(String, TemplateError),
}

impl std::fmt::Display for StateKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateKeyError::BadName(n) => write!(
                f,
                "{n:?} is not a key name (1 to {MAX_NAME} of a-z, 0-9 and _)"
            ),
            StateKeyError::Reserved(n) => write!(f, "{n:?} is set by portcullis itself"),
            StateKeyError::Template(n, e) => write!(f, "{n}: {e}"),
        }
    }
}

/// Compiles the `filter_state` section.
pub fn compile(raw: &BTreeMap<String, String>) -> Result<Vec<StateKey>, StateKeyError> {
    raw.iter()
        .map(|(name, source)| {
            let valid = !name.is_empty()
                && name.len() <= MAX_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(StateKeyError::BadName(name.clone()));
            }
            if BUILT_IN.contains(&name.as_str()) {
                return Err(StateKeyError::Reserved(name.clone()));
            }
            let template =
                Template::compile(source).map_err(|e| StateKeyError::Template(name.clone(), e))?;
            Ok(StateKey {
                name: name.clone(),
                template,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, source: &str) -> Result<Vec<StateKey>, StateKeyError> {
        compile(&BTreeMap::from([(name.to_string(), source.to_string())]))
    }

    #[test]
    fn names_are_plain_and_not_built_in() {
        assert!(one("tenant", "{{ .Subject }}").is_ok());
        assert_eq!(
            one("Tenant", "x").unwrap_err(),
            StateKeyError::BadName("Tenant".into())
        );
        assert!(matches!(one("a.b", "x"), Err(StateKeyError::BadName(_))));
        assert!(matches!(one("", "x"), Err(StateKeyError::BadName(_))));
        assert_eq!(
            one("subject", "x").unwrap_err().to_string(),
            "\"subject\" is set by portcullis itself"
        );
        assert!(matches!(
            one("tenant", "{{ .Subject"),
            Err(StateKeyError::Template(..))
        ));
    }
}
