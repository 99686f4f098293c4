//! Command-line parsing by hand: positionals, `--flag`, and `--option value` (also
//! `--option=value`, and `-H value`), each command naming the options it takes.

use crate::CliError;

pub struct Args {
    pub positional: Vec<String>,
    options: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Args {
    /// `valued` options take a value; `flags` do not. Anything else starting with `-` (but
    /// `-` itself, standard input) is a usage error.
    pub fn parse(argv: &[String], valued: &[&str], flags: &[&str]) -> Result<Args, CliError> {
        let mut args = Args {
            positional: Vec::new(),
            options: Vec::new(),
            flags: Vec::new(),
        };
        let mut it = argv.iter();
        let mut only_positional = false;
        while let Some(arg) = it.next() {
            if only_positional || arg == "-" || !arg.starts_with('-') {
                args.positional.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_positional = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if flags.contains(&name) && inline.is_none() {
                args.flags.push(name.to_string());
            } else if valued.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))?,
                };
                args.options.push((name.to_string(), value));
            } else {
                return Err(CliError::Usage(format!("unknown option {arg:?}")));
            }
        }
        Ok(args)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_string();
        self.options
            .iter()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The option's value; given twice is a usage error.
    pub fn one(&self, name: &str) -> Result<Option<&str>, CliError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(CliError::Usage(format!("{name} is given more than once")));
        }
        Ok(first)
    }
}

/// A file's bytes, or standard input's for `-`.
pub fn read_input(path: &str) -> Result<Vec<u8>, CliError> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| CliError::Failed(format!("cannot read standard input: {e}")))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| CliError::Failed(format!("cannot read {path}: {e}")))
}

/// Loads a configuration through the filter's own loader; the error is the one Envoy's log
/// would show. An Istio `WasmPlugin` stands for its `pluginConfig`, as JSON, the way Istio hands
/// it to the filter.
pub fn load_config(path: &str) -> Result<(Vec<u8>, portcullis::filter::Filter), CliError> {
    let mut bytes = read_input(path)?;
    if let Some(plugin) = plugin_config(&bytes) {
        bytes = plugin;
    }
    let filter = portcullis::filter::load(&bytes)
        .map_err(|e| CliError::Failed(format!("{path}: configuration refused: {e}")))?;
    Ok((bytes, filter))
}

/// The `pluginConfig` of a `WasmPlugin` resource, serialised as JSON.
fn plugin_config(bytes: &[u8]) -> Option<Vec<u8>> {
    let doc = portcullis::config::parse_document(std::str::from_utf8(bytes).ok()?).ok()?;
    if doc.get("kind").and_then(|k| k.as_str()) != Some("WasmPlugin") {
        return None;
    }
    let config = doc.get("spec")?.get("pluginConfig")?;
    serde_json::to_vec(config).ok()
}
