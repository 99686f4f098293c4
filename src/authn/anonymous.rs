//! `anonymous`: a fixed subject for requests without an `Authorization` header.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anonymous {
    #[serde(default = "default_subject")]
    pub subject: String,
}

fn default_subject() -> String {
    "anonymous".to_string()
}
