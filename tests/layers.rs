//! The crate's layers point one way, and only the bindings touch a host. Each top-level module of
//! `src/` has a rank; a module may name (`crate::…`) only modules of a lower rank, so there is no
//! import circle and handler families stay independent of each other (same rank, never each
//! other), as do the two bindings. The `proxy_wasm` crate is named by its binding alone.

use std::fs;
use std::path::Path;

/// Bottom first. A new top-level module must be given its place here.
const LAYERS: &[(&str, u8)] = &[
    // The request, session, callout, effect, rejection and their codecs.
    ("vocab", 0),
    // Libraries over the vocabulary.
    ("template", 1),
    ("rules", 1),
    ("jose", 1),
    // Reading configuration, and the caches handlers keep.
    ("config", 2),
    ("cache", 3),
    // Handler families.
    ("authn", 4),
    ("authz", 4),
    ("mutate", 4),
    ("errors", 4),
    // The compiled configuration, the pipeline over it, the context logic over the host.
    ("filter", 5),
    ("pipeline", 6),
    ("context", 7),
    // The bindings, one per ABI: same rank, so neither names the other.
    ("proxy_wasm", 8),
    ("dynamic_module", 8),
];

fn rank(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

/// The source files under `dir`, with the top-level module each belongs to.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            sources(&path, Some(top.unwrap_or(&name)), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = top.unwrap_or(&name).to_string();
            let text = fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), module, text));
        }
    }
}

/// The text outside `#[cfg(test)]` modules (tests may reach anywhere).
fn shipped(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap()
}

/// Every `crate::name` a text refers to.
fn crate_refs(text: &str) -> Vec<&str> {
    text.match_indices("crate::")
        .filter(|(i, _)| {
            // Not `portcullis_crate::` or the like.
            !text[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn every_module_names_only_lower_layers() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    assert!(files.len() > 50, "src/ was not read");
    let mut wrong = Vec::new();
    for (path, module, text) in &files {
        if module == "lib" {
            continue;
        }
        let Some(own) = rank(module) else {
            wrong.push(format!("{path}: module {module} has no place in LAYERS"));
            continue;
        };
        for target in crate_refs(shipped(text)) {
            if target == module {
                continue;
            }
            match rank(target) {
                Some(r) if r < own => {}
                _ => wrong.push(format!("{path}: {module} names crate::{target}")),
            }
        }
    }
    assert!(wrong.is_empty(), "layer violations:\n{}", wrong.join("\n"));
}

#[test]
fn only_the_proxy_wasm_binding_names_proxy_wasm() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let naming: Vec<&str> = files
        .iter()
        .filter(|(_, _, text)| text.contains("proxy_wasm::"))
        .map(|(path, _, _)| path.as_str())
        .collect();
    assert!(!naming.is_empty(), "the proxy-wasm binding was not read");
    assert!(
        naming.iter().all(|p| p.contains("src/proxy_wasm/")),
        "{naming:?}"
    );
}

#[test]
fn the_crate_refs_reader_reads_paths() {
    let text = "use crate::vocab::request::Headers;\nlet x = crate::cache::digest(y); my_crate::z";
    assert_eq!(crate_refs(text), ["vocab", "cache"]);
}
