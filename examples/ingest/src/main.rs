//! The fleet's ingester: writes the activity records that gateways in fleet mode
//! (`ACTIVITY_NATS_URL`) publish to JetStream into the database their activity API reads.
//!
//! ```text
//! cargo run --release -p ingest -- --nats-url nats://127.0.0.1:4222 \
//!     --database-url postgres://postgres@127.0.0.1/postgres --metrics-addr 127.0.0.1:9464
//! ```
//!
//! Run as many as the database takes: ingesters with the same `--durable` name share one
//! durable consumer. Each message is acknowledged after the database committed its record;
//! a database outage leaves the records in the stream until it is back. SIGINT / SIGTERM
//! drain (the batches being written are finished and acknowledged) and exit. `--help` lists
//! the flags; the library's `tower_activity::ingest` module documents the behaviour.
//! Exit code 2 for a bad flag, 1 when NATS or the database cannot be opened.

mod args;
mod metrics;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower_activity::ingest::Ingester;
use tower_activity::sink::SqlSink;
use tracing_subscriber::EnvFilter;

use args::{Args, USAGE};
use metrics::Shared;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ingest: {e}");
            return ExitCode::from(2);
        }
    };
    // `/metrics` first: it answers (`ingest_connected 0`) while the connections below wait,
    // and a bad address fails before them.
    let shared = Shared::default();
    if let Some(addr) = args.metrics_addr {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ingest: cannot listen on --metrics-addr {addr} ({e})");
                return ExitCode::FAILURE;
            }
        };
        let router = metrics::router(shared.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        tracing::info!("metrics on http://{addr}/metrics");
    }
    let sink = match SqlSink::connect(&args.database_url).await {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("ingest: cannot open --database-url: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ingester = match Ingester::connect(&args.nats_url, args.config.clone()).await {
        Ok(ingester) => Arc::new(ingester),
        Err(e) => {
            eprintln!("ingest: {e}");
            return ExitCode::FAILURE;
        }
    };
    shared.ingester.get_or_init(|| ingester.clone());
    tracing::info!(
        stream = %args.config.stream.name,
        consumer = %args.config.durable,
        "ingesting from {} into {}",
        args.nats_url,
        sink_name(&args.database_url),
    );
    let progress = tokio::spawn(progress(ingester.clone(), shared, args.log_every));
    let stats = ingester.run(&sink, shutdown_signal()).await;
    progress.abort();
    sink.close().await;
    tracing::info!(
        written = stats.written,
        rejected = stats.rejected,
        retried = stats.retried,
        sink_failures = stats.sink_failures,
        "stopped: {} records written",
        stats.written
    );
    ExitCode::SUCCESS
}

/// A line every `every`: records written and the rate since the last line, the lag, failures.
async fn progress(ingester: Arc<Ingester>, shared: Shared, every: Duration) {
    let mut last = (Instant::now(), ingester.stats().written);
    loop {
        tokio::time::sleep(every).await;
        let stats = ingester.stats();
        let now = Instant::now();
        let rate = (stats.written - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        shared.set_rate(rate);
        last = (now, stats.written);
        let lag = ingester.lag().await;
        let (pending, unacked) = lag.map(|l| (l.pending, l.ack_pending)).unwrap_or_default();
        tracing::info!(
            written = stats.written,
            rate = rate.round(),
            pending,
            unacked,
            sink_failures = stats.sink_failures,
            rejected = stats.rejected,
            consumer_errors = stats.consumer_errors,
            "progress"
        );
    }
}

/// The database for the log, without credentials.
fn sink_name(url: &str) -> &str {
    url.split_once('@').map_or(url, |(_, host)| host)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("stopping: draining the batches being written");
}
