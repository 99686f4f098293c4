//! Scenario tables (`tests/scenarios/*.yaml`, format in its README): loading, and judging what
//! a tier observed against what a case expects. Every tier that runs the tables uses this file,
//! so the tables mean the same thing everywhere.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub name: String,
    #[serde(default)]
    pub config_file: Option<String>,
    #[serde(default)]
    pub config: Option<serde_yaml::Value>,
    #[serde(default)]
    pub config_error: Option<String>,
    /// The proxy is warm: its root context fetched this JWKS (path from the repo root) before
    /// each case starts, and those fetches are not among the case's callouts.
    #[serde(default)]
    pub jwks_file: Option<String>,
    #[serde(default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub time: Option<u64>,
    pub request: RequestSpec,
    #[serde(default)]
    pub callouts: Vec<CalloutSpec>,
    pub expect: Expect,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<(String, HeaderValue)>,
    #[serde(default)]
    pub omit: Vec<String>,
    /// A request body, delivered whole after the headers.
    #[serde(default)]
    pub body: Option<String>,
    /// The downstream peer (`ip:port`); default `world::DEFAULT_PEER`.
    #[serde(default)]
    pub peer: Option<String>,
}

fn get() -> String {
    "GET".to_string()
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum HeaderValue {
    Text(String),
    Hex {
        hex: String,
    },
    Repeat {
        repeat: String,
        times: usize,
    },
    /// A JWT minted with the test keys, after an optional prefix such as `"Bearer "`.
    Jwt {
        jwt: super::mint::JwtSpec,
        #[serde(default)]
        prefix: String,
    },
}

impl HeaderValue {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            HeaderValue::Text(t) => t.as_bytes().to_vec(),
            HeaderValue::Hex { hex } => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect(),
            HeaderValue::Repeat { repeat, times } => repeat.repeat(*times).into_bytes(),
            HeaderValue::Jwt { jwt, prefix } => {
                format!("{prefix}{}", super::mint::mint(jwt)).into_bytes()
            }
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CalloutSpec {
    #[serde(default)]
    pub expect: CalloutExpect,
    pub respond: Respond,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct CalloutExpect {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub absent: Vec<String>,
    /// The exact body text.
    #[serde(default)]
    pub body: Option<String>,
    /// The body parsed as JSON, compared for equality.
    #[serde(default)]
    pub body_json: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    #[serde(default)]
    pub status: Option<u32>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_json: Option<serde_json::Value>,
    /// A file whose bytes are the body, from the repo root.
    #[serde(default)]
    pub body_file: Option<String>,
    #[serde(default)]
    pub fail: bool,
}

impl Respond {
    pub fn body_bytes(&self) -> Vec<u8> {
        match (&self.body, &self.body_json, &self.body_file) {
            (Some(b), _, _) => b.as_bytes().to_vec(),
            (None, Some(j), _) => j.to_string().into_bytes(),
            (None, None, Some(f)) => std::fs::read(root().join(f)).expect("body_file"),
            (None, None, None) => Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub forward: Option<ForwardExpect>,
    #[serde(default)]
    pub reply: Option<ReplyExpect>,
    /// Filter state keys (`subject` for `wasm.portcullis.subject`) and their values; `null`:
    /// the key must not be set. Keys not listed are not asserted.
    #[serde(default)]
    pub filter_state: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ForwardExpect {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub absent: Vec<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ReplyExpect {
    pub status: u32,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body_json: Option<serde_json::Value>,
    #[serde(default)]
    pub body: Option<String>,
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("tests/scenarios").is_dir())
        .expect("repo root")
        .to_path_buf()
}

/// Every table, sorted by file name.
pub fn tables() -> Vec<(PathBuf, Table)> {
    let dir = root().join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read table");
            let table: Table =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, table)
        })
        .collect()
}

/// The configuration bytes a table hands to `on_configure`.
pub fn config_bytes(table: &Table) -> Vec<u8> {
    match (&table.config_file, &table.config) {
        (Some(f), _) => std::fs::read(root().join(f)).expect("config_file"),
        (None, Some(c)) => serde_json::to_vec(c).expect("config as JSON"),
        (None, None) => Vec::new(),
    }
}

/// The raw header map of a case's request: pseudo-headers first.
pub fn request_headers(req: &RequestSpec) -> Vec<(String, Vec<u8>)> {
    let (scheme, rest) = req.url.split_once("://").expect("url has a scheme");
    let split = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() { "/" } else { path };
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), req.method.clone().into_bytes()),
        (":scheme".into(), scheme.as_bytes().to_vec()),
        (":authority".into(), authority.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
    ];
    headers.retain(|(k, _)| !req.omit.contains(k));
    headers.extend(
        req.headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.bytes())),
    );
    headers
}

/// A callout as a tier saw it dispatched.
#[derive(Debug, Clone)]
pub struct SeenCallout {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub body: Vec<u8>,
}

/// Checks a dispatched callout against what the table expects of it.
pub fn check_callout(expect: &CalloutExpect, seen: &SeenCallout) -> Result<(), String> {
    if let Some(c) = &expect.cluster {
        if c != &seen.cluster {
            return Err(format!(
                "callout cluster {:?}, expected {c:?}",
                seen.cluster
            ));
        }
    }
    if let Some(t) = expect.timeout_ms {
        if t != seen.timeout_ms {
            return Err(format!(
                "callout timeout {} ms, expected {t}",
                seen.timeout_ms
            ));
        }
    }
    let get = |n: &str| {
        seen.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    for (k, v) in &expect.headers {
        if get(k) != Some(v.as_str()) {
            return Err(format!(
                "callout header {k}: {:?}, expected {v:?} (all: {:?})",
                get(k),
                seen.headers
            ));
        }
    }
    for k in &expect.absent {
        if get(k).is_some() {
            return Err(format!("callout carries {k}, which must be absent"));
        }
    }
    let text = String::from_utf8_lossy(&seen.body);
    if let Some(b) = &expect.body {
        if text != b.as_str() {
            return Err(format!("callout body {text:?}, expected {b:?}"));
        }
    }
    if let Some(j) = &expect.body_json {
        let got: serde_json::Value = serde_json::from_slice(&seen.body)
            .map_err(|e| format!("callout body is not JSON ({e}): {text}"))?;
        if &got != j {
            return Err(format!("callout body {got}, expected {j}"));
        }
    }
    Ok(())
}

/// How a request ended in a tier.
#[derive(Debug, Clone)]
pub enum Ending {
    /// Forwarded with this final header map (pseudo-headers included).
    Forward(Vec<(String, Vec<u8>)>),
    Reply {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Still paused, or nothing happened.
    Stuck(String),
}

pub fn check_ending(expect: &Expect, ending: &Ending) -> Result<(), String> {
    match (ending, &expect.forward, &expect.reply) {
        (Ending::Forward(headers), Some(f), None) => {
            let values = |n: &str| -> Vec<String> {
                headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .collect()
            };
            for (k, v) in &f.headers {
                if values(k) != vec![v.clone()] {
                    return Err(format!(
                        "forwarded {k}: {:?}, expected exactly [{v:?}]",
                        values(k)
                    ));
                }
            }
            for k in &f.absent {
                if !values(k).is_empty() {
                    return Err(format!("forwarded {k}: {:?}, expected absent", values(k)));
                }
            }
            if let Some(p) = &f.path {
                if values(":path") != vec![p.clone()] {
                    return Err(format!(
                        "forwarded :path {:?}, expected {p:?}",
                        values(":path")
                    ));
                }
            }
            Ok(())
        }
        (
            Ending::Reply {
                status,
                headers,
                body,
            },
            None,
            Some(r),
        ) => {
            if *status != r.status {
                return Err(format!(
                    "reply status {status}, expected {} (body {})",
                    r.status,
                    String::from_utf8_lossy(body)
                ));
            }
            for (k, v) in &r.headers {
                let got = headers
                    .iter()
                    .find(|(h, _)| h.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v);
                if got != Some(v) {
                    return Err(format!("reply header {k}: {got:?}, expected {v:?}"));
                }
            }
            if let Some(j) = &r.body_json {
                let got: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                    format!(
                        "reply body is not JSON ({e}): {}",
                        String::from_utf8_lossy(body)
                    )
                })?;
                if &got != j {
                    return Err(format!("reply body {got}, expected {j}"));
                }
            }
            if let Some(b) = &r.body {
                if body != b.as_bytes() {
                    return Err(format!(
                        "reply body {:?}, expected {b:?}",
                        String::from_utf8_lossy(body)
                    ));
                }
            }
            Ok(())
        }
        (ending, _, _) => Err(format!("ended as {ending:?}, expected {expect:?}")),
    }
}

/// Checks the filter state a request left (keys without `wasm.portcullis.`, as set).
pub fn check_filter_state(expect: &Expect, seen: &[(String, String)]) -> Result<(), String> {
    for (key, want) in &expect.filter_state {
        let got = seen.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if got != want.as_ref() {
            return Err(format!(
                "filter state {key}: {got:?}, expected {want:?} (all: {seen:?})"
            ));
        }
    }
    Ok(())
}

pub fn display(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}
