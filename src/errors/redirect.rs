//! The `redirect` error handler: 301/302 to `to`, optionally carrying where the caller was.

use crate::config::{Invalid, Kind};
use crate::vocab::effect::Reply;
use crate::vocab::percent::query_escape;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    pub to: String,
    #[serde(default = "default_code")]
    pub code: u32,
    #[serde(default)]
    pub return_to_query_param: String,
    #[serde(default)]
    pub when: Vec<super::when::When>,
}

fn default_code() -> u32 {
    302
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub to: String,
    pub code: u32,
    pub return_to_query_param: Option<String>,
}

impl Redirect {
    pub fn from_config(c: &RedirectConfig) -> Result<Redirect, Invalid> {
        if c.to.is_empty() {
            return Err(Invalid::new("to", Kind::Missing));
        }
        if c.to.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(Invalid::new(
                "to",
                Kind::Explained("must be a URI without spaces or control characters"),
            ));
        }
        let param = &c.return_to_query_param;
        if !param
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b",._~-".contains(&b))
        {
            return Err(Invalid::new(
                "return_to_query_param",
                Kind::Explained("must match ^[A-Za-z0-9,._~-]*$"),
            ));
        }
        Ok(Redirect {
            to: c.to.clone(),
            // Oathkeeper turns any code other than 301 into 302.
            code: if c.code == 301 { 301 } else { 302 },
            return_to_query_param: (!param.is_empty()).then(|| param.clone()),
        })
    }

    /// `current_url` is the URL the caller asked for, as matched.
    pub fn reply(&self, current_url: &str) -> Reply {
        let mut location = self.to.clone();
        if let Some(param) = &self.return_to_query_param {
            let (base, fragment) = match location.split_once('#') {
                Some((b, f)) => (b.to_string(), Some(f.to_string())),
                None => (location.clone(), None),
            };
            location = base;
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(param);
            location.push('=');
            location.push_str(&query_escape(current_url));
            if let Some(f) = fragment {
                location.push('#');
                location.push_str(&f);
            }
        }
        Reply {
            status: self.code,
            headers: vec![("location".to_string(), location)],
            body: String::new(),
        }
    }
}
