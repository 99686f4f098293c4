//! A handler's `cache` section. Oathkeeper writes one for `oauth2_introspection`,
//! `oauth2_client_credentials` and `hydrator` (off unless `enabled`, an optional `ttl`, and
//! Ristretto's sizes); portcullis adds one to `cookie_session` and `bearer_token` (on unless
//! disabled, with `negative_ttl` and `max_entries`). One shape, read by each handler with its
//! own defaults; a field a handler cannot honour is refused, not ignored.

use super::duration::parse_ms;
use super::{Invalid, Kind};
use serde::de::IgnoredAny;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    negative_ttl: Option<String>,
    #[serde(default)]
    max_entries: Option<usize>,
    /// Ristretto's sizes in Oathkeeper; accepted, the per-worker caches have their own bounds.
    #[serde(default, rename = "max_tokens")]
    _max_tokens: Option<IgnoredAny>,
    #[serde(default, rename = "max_cost")]
    _max_cost: Option<IgnoredAny>,
}

impl CacheSection {
    /// Whether caching is on; `default` when the section does not say.
    pub fn enabled(&self, default: bool) -> bool {
        self.enabled.unwrap_or(default)
    }

    /// `None` when caching is off (by default: `enabled: true` turns it on); otherwise the
    /// `ttl` in ms, if one is set. `negative_ttl` and `max_entries` are refused: the handlers
    /// that read this way keep neither.
    pub fn lifetime(&self) -> Result<Option<Option<u64>>, Invalid> {
        if self.negative_ttl.is_some() || self.max_entries.is_some() {
            return Err(Invalid::new(
                "cache",
                Kind::Explained(
                    "negative_ttl and max_entries belong to cookie_session and bearer_token",
                ),
            ));
        }
        if !self.enabled(false) {
            return Ok(None);
        }
        self.ttl_ms().map(Some)
    }

    /// `ttl` in ms, if set.
    pub fn ttl_ms(&self) -> Result<Option<u64>, Invalid> {
        duration("ttl", self.ttl.as_deref())
    }

    /// `negative_ttl` in ms, if set.
    pub fn negative_ttl_ms(&self) -> Result<Option<u64>, Invalid> {
        duration("negative_ttl", self.negative_ttl.as_deref())
    }

    pub fn max_entries(&self) -> Option<usize> {
        self.max_entries
    }
}

fn duration(field: &str, value: Option<&str>) -> Result<Option<u64>, Invalid> {
    value
        .map(|v| {
            parse_ms(v)
                .ok_or_else(|| Invalid::new(format!("cache.{field}"), Kind::NotADuration(v.into())))
        })
        .transpose()
}
