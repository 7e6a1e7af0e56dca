//! Test support shared by the integration tests, the `replay` example and the benches.
#![allow(dead_code, unreachable_pub)]

pub mod exchange;
pub mod framed;
