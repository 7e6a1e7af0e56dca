//! Helpers shared by the storage tests (`tests/storage_postgres.rs`, `tests/storage_sqlite.rs`)
//! and the storage bench: record generators, a per-test PostgreSQL database, and the scenarios
//! every SQL sink must pass, each checked against `MemorySink`, the reference.

pub mod data;
pub mod postgres;
pub mod scenarios;
