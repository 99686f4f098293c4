//! `portcullis check CONFIG`: load the configuration exactly as the filter's `on_configure`
//! does, and list each rule with its pattern, methods and handlers.

use crate::args::{load_config, Args};
use crate::{describe, CliError};
use std::fmt::Write;

pub fn run(argv: &[String], out: &mut String) -> Result<(), CliError> {
    let args = Args::parse(argv, &[], &[])?;
    let [path] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "check takes one CONFIG (a file, or -)".into(),
        ));
    };
    let (_, filter) = load_config(path)?;
    let _ = writeln!(
        out,
        "{path}: configuration loads: {} rule{}, {} JWKS URL{}",
        filter.rules.len(),
        plural(filter.rules.len()),
        filter.jwks_sources.len(),
        plural(filter.jwks_sources.len()),
    );
    for (i, rule) in filter.rules.iter().enumerate() {
        let (url, methods) = describe::pattern(&filter, i);
        let _ = writeln!(out, "\nrule {}", rule.id);
        let _ = writeln!(out, "  match           {url}");
        let _ = writeln!(out, "  methods         {methods}");
        describe::handlers(out, rule, "  ");
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
