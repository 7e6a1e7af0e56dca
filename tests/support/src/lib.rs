//! Test support for tower-activity's own tests, benches and the `replay` example: bodies
//! that yield given bytes in chosen frames ([`framed`]), a recorded exchange run through an
//! `ActivityLayer` ([`exchange`]), a sink whose answers a test scripts ([`scripted`]), and what
//! the storage tests share ([`storage`]).
//!
//! A workspace crate rather than files included by path into several crates, so each user
//! takes what it needs and nothing is compiled twice.

pub mod exchange;
pub mod framed;
pub mod scripted;
pub mod storage;
