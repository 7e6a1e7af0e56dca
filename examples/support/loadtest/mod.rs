//! The load test's parts: flags, the open-loop driver, the processes under test, the report.
//! `examples/loadtest.rs` has the overview.

pub mod args;
pub mod drive;
pub mod parity;
pub mod procs;
pub mod report;
