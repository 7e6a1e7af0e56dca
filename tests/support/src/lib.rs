//! Test support for tower-activity's own tests, benches and the `replay` example: bodies
//! that yield given bytes in chosen frames ([`framed`]), a recorded exchange run through an
//! `ActivityLayer` ([`exchange`]), a sink whose answers a test scripts ([`scripted`]), an
//! OTLP/HTTP collector ([`otlp`]), the `replay` example's work ([`replay`]), what the storage
//! tests share ([`storage`]), the benches' fixed exchanges ([`workload`]) and their
//! instruction counts ([`callgrind`]).
//!
//! A workspace crate rather than files included by path into several crates, so each user
//! takes what it needs and nothing is compiled twice.

pub mod billing;
pub mod budget;
pub mod callgrind;
pub mod exchange;
pub mod framed;
pub mod nats;
pub mod otlp;
pub mod pg_server;
pub mod ports;
pub mod replay;
pub mod scripted;
pub mod storage;
pub mod workload;
