//! Every tracker's JSON reader and the error-body reader over arbitrary bytes: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| tower_activity::fuzz::json(input));
