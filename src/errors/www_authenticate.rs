//! The `www_authenticate` error handler: always 401 with a Basic challenge.

use crate::vocab::effect::Reply;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WwwAuthenticateConfig {
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default)]
    pub when: Vec<super::when::When>,
}

fn default_realm() -> String {
    "Please authenticate.".to_string()
}

pub fn reply(realm: &str) -> Reply {
    Reply {
        status: 401,
        headers: vec![
            // Unquoted, exactly as Oathkeeper writes it.
            (
                "www-authenticate".to_string(),
                format!("Basic realm={realm}"),
            ),
            (
                "content-type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            ),
        ],
        body: "Unauthorized\n".to_string(),
    }
}
