//! `portcullis import DIR|FILE...`: oathkeeper-maester `Rule` resources (multi-document YAML)
//! and Oathkeeper rule files (JSON or YAML arrays of rules) become one `pluginConfig`, or an
//! Istio `WasmPlugin` carrying it. A maester `Rule` becomes the rule its controller would write
//! for Oathkeeper (its defaults for absent handlers, snake_case `upstream`), with the id
//! `metadata.name` as the filter itself names such resources. The result is loaded with the
//! filter's own loader before it is printed, so what comes out loads in Envoy.
//!
//! With `--server-config OATHKEEPER_CONFIG --cors-policy FILE`, the server configuration's
//! `serve.proxy.cors` is also written to FILE as Envoy's CORS policy (`cors.rs`).

use crate::args::{read_input, Args};
use crate::CliError;
use serde::Deserialize;
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The handler sections of a configuration, and the key in a rule that names their handlers.
const SECTIONS: &[(&str, &str)] = &[
    ("authenticators", "authenticators"),
    ("authorizers", "authorizer"),
    ("mutators", "mutators"),
    ("errors", "errors"),
];

pub fn run(argv: &[String], out: &mut String) -> Result<(), CliError> {
    let args = Args::parse(
        argv,
        &[
            "--base",
            "--name",
            "--namespace",
            "--image",
            "--sha256",
            "--selector",
            "--server-config",
            "--cors-policy",
        ],
        &["--wasmplugin"],
    )?;
    if args.positional.is_empty() {
        return Err(CliError::Usage(
            "import takes one or more DIR or FILE arguments".into(),
        ));
    }
    let plugin = if args.flag("--wasmplugin") {
        Some(PluginArgs::from(&args)?)
    } else {
        for o in ["--name", "--namespace", "--image", "--sha256", "--selector"] {
            if args.all(o).next().is_some() {
                return Err(CliError::Usage(format!("{o} needs --wasmplugin")));
            }
        }
        None
    };

    let cors = match (args.one("--server-config")?, args.one("--cors-policy")?) {
        (Some(config), Some(out)) => {
            let policy = crate::cors::policy(
                config,
                &Value::Mapping(mapping(config, "server configuration")?),
            )?;
            Some((policy, out))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(CliError::Usage(
                "--server-config needs --cors-policy FILE (where the Envoy CORS policy goes)"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "--cors-policy needs --server-config OATHKEEPER_CONFIG".into(),
            ))
        }
    };

    let mut rules = Vec::new();
    for input in &args.positional {
        for file in files(input)? {
            let name = file.display().to_string();
            let text = String::from_utf8(read_input(&name)?)
                .map_err(|_| CliError::Failed(format!("{name}: not UTF-8")))?;
            for doc in documents(&name, &text)? {
                collect(&name, doc, &mut rules)?;
            }
        }
    }
    if rules.is_empty() {
        return Err(CliError::Failed(
            "no rules found (expected oathkeeper.ory.sh Rule resources or arrays of rules)".into(),
        ));
    }
    let base = match args.one("--base")? {
        Some(path) => mapping(path, "base")?,
        None => Mapping::new(),
    };
    let config = plugin_config(base, rules);

    // Istio hands pluginConfig over as JSON: load exactly that.
    let json = serde_json::to_vec(&config)
        .map_err(|e| CliError::Failed(format!("the configuration is not JSON: {e}")))?;
    portcullis::filter::load(&json).map_err(|e| {
        CliError::Failed(format!(
            "the imported configuration does not load: {e}\n(handler settings the rules \
             do not carry themselves go in a base configuration: --base CONFIG)"
        ))
    })?;

    let document = match plugin {
        Some(p) => p.render(config),
        None => Value::Mapping(config),
    };
    let yaml = serde_yaml::to_string(&document)
        .map_err(|e| CliError::Failed(format!("cannot write YAML: {e}")))?;
    if let Some((policy, path)) = cors {
        let text = serde_yaml::to_string(&policy)
            .map_err(|e| CliError::Failed(format!("cannot write YAML: {e}")))?;
        std::fs::write(path, format!("{CORS_HEADER}{text}"))
            .map_err(|e| CliError::Failed(format!("cannot write {path}: {e}")))?;
    }
    out.push_str(&yaml);
    Ok(())
}

const CORS_HEADER: &str = "\
# Oathkeeper's serve.proxy.cors as Envoy's CORS policy, written by `portcullis import`. Put it under
# the virtual host's (or a route's) typed_per_filter_config, with envoy.filters.http.cors in
# http_filters BEFORE portcullis (envoy/browser.yaml, docs/migration.md: Browser clients).
";

/// The first document of a file, which must be a mapping (`what` names it in the error).
fn mapping(path: &str, what: &str) -> Result<Mapping, CliError> {
    let text = String::from_utf8(read_input(path)?)
        .map_err(|_| CliError::Failed(format!("{path}: not UTF-8")))?;
    match documents(path, &text)?.into_iter().next() {
        Some(Value::Mapping(m)) => Ok(m),
        _ => Err(CliError::Failed(format!(
            "{path}: the {what} must be one configuration mapping"
        ))),
    }
}

/// A file as given, or a directory's `*.yaml`, `*.yml` and `*.json` files, sorted by name.
fn files(input: &str) -> Result<Vec<PathBuf>, CliError> {
    let path = Path::new(input);
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| CliError::Failed(format!("cannot read directory {input}: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Every document in a file: JSON, or YAML with `---` separators.
fn documents(name: &str, text: &str) -> Result<Vec<Value>, CliError> {
    let bad = |e: String| CliError::Failed(format!("{name}: {e}"));
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        return serde_yaml::to_value(json)
            .map(|v| vec![v])
            .map_err(|e| bad(e.to_string()));
    }
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| bad(e.to_string()))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn text<'a>(m: &'a Mapping, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The rules in one document: an array of rules, a `Rule` resource, a `RuleList`, or one rule.
/// Other Kubernetes resources are skipped (a manifests directory holds more than rules).
fn collect(file: &str, doc: Value, rules: &mut Vec<Value>) -> Result<(), CliError> {
    match doc {
        Value::Sequence(items) => {
            for item in items {
                collect(file, item, rules)?;
            }
            Ok(())
        }
        Value::Mapping(m) if m.contains_key("kind") || m.contains_key("apiVersion") => {
            let (kind, api) = (text(&m, "kind"), text(&m, "apiVersion"));
            if kind.ends_with("List") {
                return match m.get("items") {
                    Some(items) => collect(file, items.clone(), rules),
                    None => Ok(()),
                };
            }
            if kind == "Rule" && api.starts_with("oathkeeper.ory.sh/") {
                rules.push(from_maester(file, m)?);
            } else {
                eprintln!(
                    "portcullis: {file}: skipped {api} {kind} (not an oathkeeper.ory.sh Rule)"
                );
            }
            Ok(())
        }
        Value::Mapping(m) if m.contains_key("match") => {
            rules.push(Value::Mapping(m));
            Ok(())
        }
        Value::Mapping(m)
            if ["access_rules", "authenticators", "clusters", "errors"]
                .iter()
                .any(|k| m.get(*k).is_some_and(Value::is_mapping)) =>
        {
            Err(CliError::Failed(format!(
                "{file} is a configuration, not rules; pass it as --base"
            )))
        }
        Value::Mapping(_) => Err(CliError::Failed(format!(
            "{file}: a mapping that is neither a rule (no match) nor a Rule resource"
        ))),
        _ => Err(CliError::Failed(format!(
            "{file}: expected rules (a mapping or a list), found a scalar"
        ))),
    }
}

/// What oathkeeper-maester writes for Oathkeeper from one `Rule`: `spec` with the id, its
/// defaults for absent handlers (`unauthorized`, `deny`, `noop`), `upstream` in Oathkeeper's
/// spelling, and no `configMapName` (where maester writes rules; meaningless here).
fn from_maester(file: &str, resource: Mapping) -> Result<Value, CliError> {
    let name = resource
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::Failed(format!("{file}: a Rule without metadata.name")))?
        .to_string();
    let mut spec = match resource.get("spec") {
        Some(Value::Mapping(s)) => s.clone(),
        _ => Mapping::new(),
    };
    let handler = |name: &str| {
        let mut h = Mapping::new();
        h.insert("handler".into(), name.into());
        Value::Mapping(h)
    };
    let mut rule = Mapping::new();
    rule.insert("id".into(), name.into());
    let mut take = |key: &str, default: Option<Value>| {
        if let Some(v) = spec.remove(key).filter(|v| !v.is_null()).or(default) {
            rule.insert(key.into(), v);
        }
    };
    take("match", None);
    take(
        "authenticators",
        Some(Value::Sequence(vec![handler("unauthorized")])),
    );
    take("authorizer", Some(handler("deny")));
    take("mutators", Some(Value::Sequence(vec![handler("noop")])));
    take("errors", None);
    spec.remove("configMapName");
    if let Some(Value::Mapping(up)) = spec.remove("upstream") {
        let mut upstream = Mapping::new();
        for (k, v) in up {
            let key = match k.as_str() {
                Some("preserveHost") => "preserve_host".into(),
                Some("stripPath") => "strip_path".into(),
                _ => k,
            };
            upstream.insert(key, v);
        }
        rule.insert("upstream".into(), Value::Mapping(upstream));
    }
    // Anything else stays, so the loader names it rather than this tool dropping it.
    for (k, v) in spec {
        rule.insert(k, v);
    }
    Ok(Value::Mapping(rule))
}

/// The base configuration with the rules appended to `access_rules.rules`, and every handler
/// the rules use that the base does not mention switched on (its settings then come from the
/// rules themselves).
fn plugin_config(base: Mapping, rules: Vec<Value>) -> Mapping {
    let mut used: Vec<(&str, String)> = Vec::new();
    for rule in &rules {
        for (section, key) in SECTIONS {
            let handlers = match rule.get(*key) {
                Some(Value::Sequence(list)) => list.iter().collect(),
                Some(one @ Value::Mapping(_)) => vec![one],
                _ => Vec::new(),
            };
            for h in handlers {
                if let Some(name) = h.get("handler").and_then(Value::as_str) {
                    if !used.iter().any(|(s, n)| s == section && n == name) {
                        used.push((section, name.to_string()));
                    }
                }
            }
        }
    }
    let mut config = Mapping::new();
    let mut access = match base.get("access_rules") {
        Some(Value::Mapping(a)) => a.clone(),
        _ => Mapping::new(),
    };
    let mut all = match access.remove("rules") {
        Some(Value::Sequence(r)) => r,
        _ => Vec::new(),
    };
    all.extend(rules);
    access.insert("rules".into(), Value::Sequence(all));
    config.insert("access_rules".into(), Value::Mapping(access));
    for (k, v) in base {
        if k.as_str() != Some("access_rules") {
            config.insert(k, v);
        }
    }
    let mut enabled = Vec::new();
    for (section, name) in used {
        // `errors.handlers.json` is on by default.
        if section == "errors" && name == "json" {
            continue;
        }
        let mut table = match section {
            "errors" => config.get("errors").and_then(|e| e.get("handlers")),
            s => config.get(s),
        }
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
        if table.contains_key(name.as_str()) {
            continue;
        }
        let mut on = Mapping::new();
        on.insert("enabled".into(), true.into());
        table.insert(name.clone().into(), Value::Mapping(on));
        enabled.push(format!("{section}.{name}"));
        if section == "errors" {
            let mut errors = config
                .get("errors")
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default();
            errors.insert("handlers".into(), Value::Mapping(table));
            config.insert("errors".into(), Value::Mapping(errors));
        } else {
            config.insert(section.into(), Value::Mapping(table));
        }
    }
    if !enabled.is_empty() {
        eprintln!(
            "portcullis: enabled the handlers the rules use and the base does not configure: {}",
            enabled.join(", ")
        );
    }
    config
}

/// `--wasmplugin` and its settings.
struct PluginArgs {
    name: String,
    namespace: Option<String>,
    image: String,
    sha256: String,
    selector: Vec<(String, String)>,
}

impl PluginArgs {
    fn from(args: &Args) -> Result<PluginArgs, CliError> {
        let need = |o: &str| -> Result<String, CliError> {
            args.one(o)?
                .map(str::to_string)
                .ok_or_else(|| CliError::Usage(format!("--wasmplugin needs {o}")))
        };
        let name = need("--name")?;
        let image = need("--image")?;
        let sha256 = need("--sha256")?;
        let dns = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        if !dns(&name) {
            return Err(CliError::Usage(format!(
                "--name {name:?} is not a Kubernetes name (lowercase letters, digits, '-', '.')"
            )));
        }
        let namespace = args.one("--namespace")?.map(str::to_string);
        if let Some(ns) = namespace.as_deref().filter(|ns| !dns(ns)) {
            return Err(CliError::Usage(format!(
                "--namespace {ns:?} is not a Kubernetes name"
            )));
        }
        if !["oci://", "file://", "http://", "https://"]
            .iter()
            .any(|s| image.starts_with(s))
        {
            return Err(CliError::Usage(format!(
                "--image {image:?}: Istio takes oci://, file://, http:// or https:// URLs"
            )));
        }
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(CliError::Usage(
                "--sha256 must be 64 lowercase hex digits (the image's digest, without sha256:)"
                    .into(),
            ));
        }
        let mut selector = Vec::new();
        for s in args.all("--selector") {
            let (k, v) = s
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !k.contains('*') && !v.contains('*'))
                .ok_or_else(|| {
                    CliError::Usage(format!("--selector {s:?}: expected label=value"))
                })?;
            selector.push((k.to_string(), v.to_string()));
        }
        Ok(PluginArgs {
            name,
            namespace,
            image,
            sha256,
            selector,
        })
    }

    fn render(self, config: Mapping) -> Value {
        let mut metadata = Mapping::new();
        metadata.insert("name".into(), self.name.into());
        if let Some(ns) = self.namespace {
            metadata.insert("namespace".into(), ns.into());
        }
        let mut spec = Mapping::new();
        if !self.selector.is_empty() {
            let mut labels = Mapping::new();
            for (k, v) in self.selector {
                labels.insert(k.into(), v.into());
            }
            let mut selector = Mapping::new();
            selector.insert("matchLabels".into(), Value::Mapping(labels));
            spec.insert("selector".into(), Value::Mapping(selector));
        }
        spec.insert("url".into(), self.image.into());
        spec.insert("sha256".into(), self.sha256.into());
        // Authentication runs before Istio's own authorization filters, and a filter that
        // cannot load must refuse traffic rather than let it through unchecked; one that traps
        // answers 503 until Envoy has replaced its VM (envoy/README.md "When the VM fails").
        spec.insert("phase".into(), "AUTHN".into());
        spec.insert("failStrategy".into(), "FAIL_RELOAD".into());
        spec.insert("pluginConfig".into(), Value::Mapping(config));
        let mut plugin = Mapping::new();
        plugin.insert("apiVersion".into(), "extensions.istio.io/v1alpha1".into());
        plugin.insert("kind".into(), "WasmPlugin".into());
        plugin.insert("metadata".into(), Value::Mapping(metadata));
        plugin.insert("spec".into(), Value::Mapping(spec));
        Value::Mapping(plugin)
    }
}
