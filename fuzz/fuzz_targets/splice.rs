//! The include_usage request edit over arbitrary bytes: no panic, and the result is JSON.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| tower_activity::fuzz::splice(input));
