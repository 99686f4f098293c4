//! How a compiled rule reads back: its pattern, methods and handler names, as `check` lists them
//! and `explain` shows them.

use portcullis::filter::{Filter, Rule};
use std::fmt::Write;

/// `match.url` as written and the methods, uppercase.
pub fn pattern(filter: &Filter, rule: usize) -> (&str, String) {
    match filter.matcher.get(rule) {
        Some(p) => (p.url(), p.methods().join(", ")),
        None => ("?", String::new()),
    }
}

/// The handler chain in one line each, indented by `indent`.
pub fn handlers(out: &mut String, rule: &Rule, indent: &str) {
    let names = |it: &mut dyn Iterator<Item = &str>| it.collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        out,
        "{indent}authenticators  {}",
        names(&mut rule.authenticators.iter().map(|a| a.name()))
    );
    let _ = writeln!(out, "{indent}authorizer      {}", rule.authorizer.name());
    let _ = writeln!(
        out,
        "{indent}mutators        {}",
        names(&mut rule.mutators.iter().map(|m| m.name()))
    );
    if !rule.errors.is_empty() {
        let _ = writeln!(
            out,
            "{indent}errors          {}",
            names(&mut rule.errors.iter().map(|e| e.name.as_str()))
        );
    }
}
