//! `portcullis`: the filter's own core, run natively. `check` loads a configuration exactly as
//! `on_configure` does, `explain` drives one request through the real pipeline behind a stand-in
//! proxy, and `import` turns oathkeeper-maester `Rule` resources or Oathkeeper rule files into a
//! `pluginConfig` or an Istio `WasmPlugin` (and Oathkeeper's `serve.proxy.cors` into Envoy's CORS
//! policy).

mod answers;
mod args;
mod check;
mod cors;
mod describe;
mod explain;
mod explain_json;
mod host;
mod import;
mod live;
mod redact;

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  portcullis check CONFIG
  portcullis explain CONFIG METHOD URL [-H 'Name: value']... [--live] [--json]
                     [--answer CLUSTER=STATUS[[Name: value]]...[:BODY|:@FILE]]...
                     [--peer IP:PORT] [--body FILE]
  portcullis import DIR|FILE... [--base CONFIG]
                    [--server-config OATHKEEPER_CONFIG --cors-policy FILE]
                    [--wasmplugin --name NAME [--namespace NS] --image oci://... --sha256 HEX
                     [--selector key=value]...]

CONFIG is a file, or - for standard input: YAML or JSON, the bytes Envoy hands the filter.
Exit status: 0 success (explain: whatever the decision), 1 the configuration or an input is
refused, 2 usage error.";

/// Why a command did not succeed; each maps to an exit status.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// An input is refused or unreadable (exit 1).
    Failed(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match argv.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut out = String::new();
    let result = match command {
        "check" => check::run(rest, &mut out),
        "explain" => explain::run(rest, &mut out),
        "import" => import::run(rest, &mut out),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "" => Err(CliError::Usage("a command is required".into())),
        other => Err(CliError::Usage(format!("unknown command {other:?}"))),
    };
    // Whatever was explained before a failure is still worth reading.
    let _ = std::io::stdout().write_all(out.as_bytes());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("portcullis: {m}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(m)) => {
            eprintln!("portcullis: {m}");
            ExitCode::from(1)
        }
    }
}
