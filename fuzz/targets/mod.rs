//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`) and
//! the stable replay test (`tests/fuzz_replay.rs`), which runs every committed corpus file and
//! regression through the same function. Each target checks invariants, not only "no panic".

mod config;
mod crypto;
mod gjson;
mod headers;
mod jose;
mod matcher;
mod path;
mod pipeline;
mod template;
mod whoami;

pub use config::config;
pub use crypto::{der, proto};
pub use gjson::gjson;
pub use headers::headers;
pub use jose::{jwks, jwt};
#[allow(unused_imports)] // oracle: for tests/lookaround.rs
pub use matcher::{matcher, oracle};
pub use path::path;
pub use template::template;
pub use whoami::whoami;

/// A target's body: one input, which it checks and may panic on.
pub type Target = fn(&[u8]);

/// Every target by the name of its binary, corpus folder and regressions folder.
pub const ALL: &[(&str, Target)] = &[
    ("config", config),
    ("template", template),
    ("path", path),
    ("matcher", matcher),
    ("jwt", jwt),
    ("jwks", jwks),
    ("gjson", gjson),
    ("headers", headers),
    ("whoami", whoami),
    ("der", der),
    ("proto", proto),
];

/// Up to `n` NUL-separated fields, as text (invalid UTF-8 replaced); missing fields are empty.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// What the pipeline forwards must never carry bytes that split or smuggle a header.
fn assert_header_value_safe(name: &str, value: &str) {
    assert!(
        !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
        "header {name} forwarded with a control byte: {value:?}"
    );
}
