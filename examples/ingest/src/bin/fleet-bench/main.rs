//! `fleet-bench`: the fleet path's two figures (BENCHMARKS.md, "Fleet: JetStream →
//! PostgreSQL"), each run against a database and a stream of its own, removed afterwards.
//!
//! ```text
//! # end-to-end lag: response end → row visible in PostgreSQL, through a gateway in fleet
//! # mode, JetStream and one `ingest` process, at a steady open-loop rate
//! cargo run --release -p ingest --bin fleet-bench -- lag --rps 500,1000 --runs 3
//!
//! # ingest rate from a backlog: 1,000,000 records published through NatsSink first, then
//! # 1 and 2 `ingest` processes sharing a durable consumer until nothing is pending
//! cargo run --release -p ingest --bin fleet-bench -- backlog --records 1000000 --ingesters 1,2
//! ```
//!
//! NATS with JetStream at `--nats-url` (env `NATS_URL`, default `nats://127.0.0.1:4222`) and
//! PostgreSQL at `--database-url` (env `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a role that may create databases). The
//! `gateway` and `ingest` binaries are built first, in this binary's profile. `--help` lists
//! the flags. Each run prints one line; each setting, the median of its runs.

mod args;
mod backlog;
mod env;
mod lag;
mod records;

use std::process::ExitCode;

use args::{Command, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fleet-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Lag(args) => lag::run(&args).await,
        Command::Backlog(args) => backlog::run(&args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
