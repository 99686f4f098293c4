//! The configuration as written: an Oathkeeper config file's shape, plus `clusters`.

use super::clusters::ClusterEntry;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub access_rules: AccessRules,
    #[serde(default)]
    pub authenticators: BTreeMap<String, HandlerSwitch>,
    #[serde(default)]
    pub authorizers: BTreeMap<String, HandlerSwitch>,
    #[serde(default)]
    pub mutators: BTreeMap<String, HandlerSwitch>,
    #[serde(default)]
    pub errors: ErrorsSection,
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterEntry>,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub envoy: EnvoySection,
    /// Extra filter state keys (`wasm.portcullis.<key>`): templates rendered on allowed
    /// requests.
    #[serde(default)]
    pub filter_state: BTreeMap<String, String>,
    /// Where the `id_token` mutator's public keys are answered (empty: nowhere).
    #[serde(default)]
    pub jwks_endpoint: Option<String>,
    /// Oathkeeper's server, tracing and profiling sections mean nothing inside Envoy; they are
    /// accepted so a whole Oathkeeper config file can be pasted.
    #[serde(default)]
    pub serve: Value,
    #[serde(default)]
    pub tracing: Value,
    #[serde(default)]
    pub profiling: Value,
    #[serde(default)]
    pub version: Value,
}

/// What the Envoy filter around portcullis is set to do (portcullis cannot ask Envoy), and what
/// of Envoy's it may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvoySection {
    /// Mirrors the wasm filter's `allow_on_headers_stop_iteration` (Envoy ≥ 1.35): the
    /// request body reaches the filter before the headers go upstream.
    #[serde(default)]
    pub allow_on_headers_stop_iteration: bool,
    /// Whether signatures may go to the proxy's own crypto (Envoy's `verify_signature` and
    /// `sign`) when its known-answer probe passes; `false` keeps every signature in Rust.
    #[serde(default = "yes")]
    pub host_crypto: bool,
}

impl Default for EnvoySection {
    fn default() -> Self {
        EnvoySection {
            allow_on_headers_stop_iteration: false,
            host_crypto: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccessRules {
    #[serde(default)]
    pub matching_strategy: Option<String>,
    #[serde(default)]
    pub rules: Vec<Value>,
    #[serde(default)]
    pub repositories: OneOrMany,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct HandlerSwitch {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub config: Value,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSection {
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
    #[serde(default)]
    pub handlers: BTreeMap<String, HandlerSwitch>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub leak_sensitive_values: bool,
}

/// An Oathkeeper access rule.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "match")]
    pub matcher: Option<RawMatch>,
    #[serde(default)]
    pub authenticators: Vec<RawHandler>,
    #[serde(default)]
    pub authorizer: Option<RawHandler>,
    #[serde(default)]
    pub mutators: Vec<RawHandler>,
    #[serde(default)]
    pub errors: Vec<RawHandler>,
    #[serde(default)]
    pub upstream: Option<RawUpstream>,
    /// oathkeeper-maester only: where it writes rules; meaningless here.
    #[serde(default, rename = "configMapName")]
    pub config_map_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub methods: Vec<String>,
    /// The gRPC form of `match`.
    #[serde(default)]
    pub full_method: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawHandler {
    pub handler: String,
    #[serde(default)]
    pub config: Value,
}

/// Accepted and ignored: routing stays Envoy's job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    #[serde(default)]
    pub url: String,
    #[serde(default, alias = "preserveHost")]
    pub preserve_host: bool,
    #[serde(default, alias = "stripPath")]
    pub strip_path: String,
}
