//! The SSE scanner and every tracker over arbitrary bytes in arbitrary framings:
//! no panic, and the framing never changes the observation.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| tower_activity::fuzz::sse(input));
