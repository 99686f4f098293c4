#![no_main]
// Each binary runs one of the shared targets; the others are compiled but unused here.
#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::der(data));
