//! A handler's `cache` section as Oathkeeper writes it for `oauth2_introspection`,
//! `oauth2_client_credentials` and `hydrator`: off unless `enabled`, with an optional `ttl`.

use super::duration::parse_ms;
use super::{Invalid, Kind};
use serde::de::IgnoredAny;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    ttl: Option<String>,
    /// Ristretto's sizes in Oathkeeper; accepted, the per-worker caches have their own bounds.
    #[serde(default, rename = "max_tokens")]
    _max_tokens: Option<IgnoredAny>,
    #[serde(default, rename = "max_cost")]
    _max_cost: Option<IgnoredAny>,
}

impl CacheSection {
    /// `None` when caching is off; otherwise the `ttl` in ms, if one is set.
    pub fn lifetime(&self) -> Result<Option<Option<u64>>, Invalid> {
        if !self.enabled {
            return Ok(None);
        }
        match &self.ttl {
            None => Ok(Some(None)),
            Some(t) => parse_ms(t)
                .map(|ms| Some(Some(ms)))
                .ok_or_else(|| Invalid::new("cache.ttl", Kind::NotADuration(t.clone()))),
        }
    }
}
