//! `clusters`: which Envoy cluster serves each URL origin a handler calls, and with what
//! timeout. Every URL is resolved at configure time, so a missing entry is a load error rather
//! than a failed request.

use super::{Invalid, Kind};
use crate::vocab::callout::Target;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ClusterEntry {
    Name(String),
    Full {
        cluster: String,
        #[serde(default)]
        timeout: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cluster {
    name: String,
    timeout_ms: u64,
}

/// Origin (`scheme://host[:port]`, lowercase, default port dropped) → cluster.
#[derive(Debug, Clone, Default)]
pub struct Clusters(BTreeMap<String, Cluster>);

/// The parts of an absolute http(s) URL.
pub struct ParsedUrl<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

pub fn parse_url(url: &str) -> Result<ParsedUrl<'_>, Kind> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Kind::NotAbsoluteUrl(url.to_string()))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Kind::NotHttp(url.to_string()));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..auth_end).unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(Kind::NoHost(url.to_string()));
    }
    let tail = rest.get(auth_end..).unwrap_or_default();
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    Ok(ParsedUrl {
        scheme,
        authority,
        path,
        query,
    })
}

fn origin_key(scheme: &str, authority: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host = authority.strip_suffix(default_port).unwrap_or(&authority);
    format!("{scheme}://{host}")
}

impl Clusters {
    pub fn from_config(entries: &BTreeMap<String, ClusterEntry>) -> Result<Clusters, Invalid> {
        let mut map = BTreeMap::new();
        for (origin, entry) in entries {
            let at = |kind| Invalid::new(format!("{origin:?}"), kind);
            let url = parse_url(origin).map_err(at)?;
            if !(url.path.is_empty() || url.path == "/") || !url.query.is_empty() {
                return Err(at(Kind::Explained(
                    "give an origin (scheme://host[:port]) without a path",
                )));
            }
            let (name, timeout) = match entry {
                ClusterEntry::Name(n) => (n.clone(), None),
                ClusterEntry::Full { cluster, timeout } => (cluster.clone(), timeout.as_deref()),
            };
            if name.is_empty() {
                return Err(at(Kind::Explained("the cluster name is empty")));
            }
            let timeout_ms = match timeout {
                None => DEFAULT_TIMEOUT_MS,
                Some(t) => super::duration::parse_ms(t)
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        Invalid::new(
                            format!("{origin:?}: timeout"),
                            Kind::TooShort {
                                value: t.to_string(),
                                minimum: "1ms",
                            },
                        )
                    })?,
            };
            map.insert(
                origin_key(url.scheme, url.authority),
                Cluster { name, timeout_ms },
            );
        }
        Ok(Clusters(map))
    }

    /// Resolves a URL a handler will call; the error names the URL.
    pub fn resolve(&self, url: &str) -> Result<Target, Invalid> {
        let parsed = parse_url(url).map_err(Invalid::whole)?;
        let origin = origin_key(parsed.scheme, parsed.authority);
        let cluster = self.0.get(&origin).ok_or_else(|| {
            Invalid::whole(Kind::NoCluster {
                url: url.to_string(),
                origin,
            })
        })?;
        Ok(Target {
            cluster: cluster.name.clone(),
            timeout_ms: cluster.timeout_ms,
            scheme: parsed.scheme.to_ascii_lowercase(),
            authority: parsed.authority.to_string(),
            path: if parsed.path.is_empty() {
                "/".to_string()
            } else {
                parsed.path.to_string()
            },
            query: parsed.query.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters() -> Clusters {
        let yaml = r#"{"http://kratos-public.auth": "kratos", "https://login.windows.net": {"cluster": "azure_ad", "timeout": "500ms"}}"#;
        let entries: BTreeMap<String, ClusterEntry> = serde_json::from_str(yaml).unwrap();
        Clusters::from_config(&entries).unwrap()
    }

    #[test]
    fn resolves_by_origin_with_default_ports() {
        let c = clusters();
        let t = c
            .resolve("http://kratos-public.auth/sessions/whoami?x=1")
            .unwrap();
        assert_eq!(
            (t.cluster.as_str(), t.timeout_ms),
            ("kratos", DEFAULT_TIMEOUT_MS)
        );
        assert_eq!(
            (t.path.as_str(), t.query.as_str()),
            ("/sessions/whoami", "x=1")
        );
        assert_eq!(
            c.resolve("http://KRATOS-public.auth:80/").unwrap().cluster,
            "kratos"
        );
        let t = c
            .resolve("https://login.windows.net/common/discovery/keys")
            .unwrap();
        assert_eq!((t.cluster.as_str(), t.timeout_ms), ("azure_ad", 500));
    }

    #[test]
    fn a_missing_origin_names_the_url() {
        let err = clusters()
            .resolve("http://kratos-admin.auth/x")
            .unwrap_err();
        assert!(
            err.to_string().contains("http://kratos-admin.auth/x"),
            "{err}"
        );
        assert!(clusters().resolve("https://kratos-public.auth/x").is_err());
    }
}
