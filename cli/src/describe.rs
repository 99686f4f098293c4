//! How a compiled rule reads back: its pattern, methods and handler names, as `check` lists them
//! and `explain` shows them.

use portcullis::authz::Authorizer;
use portcullis::filter::{Filter, Rule};
use portcullis::mutate::Mutator;
use std::fmt::Write;

pub fn authorizer(a: &Authorizer) -> &'static str {
    match a {
        Authorizer::Allow => "allow",
        Authorizer::Deny => "deny",
        // The two differ in what they send: `remote` the request body, `remote_json` a payload.
        Authorizer::Remote(_) if a.needs_body() => "remote",
        Authorizer::Remote(_) => "remote_json",
    }
}

pub fn mutator(m: &Mutator) -> &'static str {
    match m {
        Mutator::Noop => "noop",
        Mutator::Header(_) => "header",
        Mutator::Cookie(_) => "cookie",
        Mutator::Hydrator(_) => "hydrator",
        Mutator::IdToken(_) => "id_token",
    }
}

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
    let _ = writeln!(
        out,
        "{indent}authorizer      {}",
        authorizer(&rule.authorizer)
    );
    let _ = writeln!(
        out,
        "{indent}mutators        {}",
        names(&mut rule.mutators.iter().map(mutator))
    );
    if !rule.errors.is_empty() {
        let _ = writeln!(
            out,
            "{indent}errors          {}",
            names(&mut rule.errors.iter().map(|e| e.name.as_str()))
        );
    }
}
