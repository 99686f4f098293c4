//! Test builds only (`make build-trap`: `--features test-trap`, into `target/trap`; the release
//! `.wasm` never has it): a request carrying the header `x-portcullis-trap` traps the VM, so the
//! Envoy tests can show what each `failure_policy` does after a trap (tests/envoy/test_trap.py).
#![cfg(feature = "test-trap")]

/// The header that traps the VM, whatever its value.
pub const HEADER: &str = "x-portcullis-trap";

/// Traps the VM when the request carries [`HEADER`].
pub fn on_request_headers(headers: &[(String, Vec<u8>)]) {
    if headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(HEADER))
    {
        trap();
    }
}

/// `src/` denies `clippy::panic`, and a panic (`panic = "abort"`) would end in the same trap by
/// way of the panic hook; the trap instruction itself says what this is: the failure the test
/// needs, as an out-of-memory, a stack overflow or a slipped panic would cause it.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
