//! The include_usage strip over arbitrary bytes in arbitrary framings: no panic, never more
//! bytes out than in, and the framing never changes what the client receives.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| tower_activity::fuzz::strip(input));
