//! The example gateway: an LLM API proxy that accounts every request, with users, chat
//! sessions, the activity API, Prometheus metrics and a graceful shutdown.
//!
//! ```text
//! cargo run -p gateway
//! ```
//!
//! serves on `127.0.0.1:8080` with no setup: a SQLite file (`activity.db`, created in the
//! current directory) and the mock upstream started in-process. The environment (`GATEWAY_ADDR`,
//! `DATABASE_URL`, `GATEWAY_CONFIG`, `UPSTREAM_URL`, `UPSTREAM_API_KEY`, `METRICS_TOKEN`,
//! `SHUTDOWN_GRACE_SECS`, `PRICES_FILE`, the bounds,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, `LOG_FORMAT` …) and the routes are described in the `gateway` library
//! (`src/config.rs`, `src/limits.rs`, `src/lib.rs`); the README has a curl session and
//! configurations. Exit code 2 with a one-line cause for a bad variable or configuration file,
//! 1 when the database or the address cannot be opened.

use std::process::ExitCode;
use std::time::Duration;

use gateway::{Gateway, GatewayConfig, UpstreamUrl};

/// The binary's allocator with `--features mimalloc` (off by default). Records are built on
/// the request workers and freed on the writer's thread; glibc's `malloc` takes each such free
/// through its arena's slow path and refills the workers' caches with `_int_malloc`, where
/// mimalloc hands cross-thread frees back to the owning thread in batches. Under `valgrind
/// --tool=callgrind` at 200 rps (`scripts/gateway-instructions.sh`) it cut the whole gateway's
/// instructions per JSON request by 13–19 % and per SSE stream by 7–11 %, but left to itself
/// its resident set is about twice glibc's, so it is not the default; run it with
/// `MIMALLOC_ARENA_EAGER_COMMIT=0`, which keeps it to glibc's (docs/decisions.md, "Allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the writer may take to store what is queued once the server has stopped.
const WRITER_DEADLINE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    // Before SQLite's first connection, which takes its process-wide configuration.
    if let Err(rc) = gateway::storage::sqlite_memory_statistics_off() {
        eprintln!("gateway: SQLite's memory statistics stay on (sqlite3_config: {rc})");
    }
    // The runtime's scheduler knobs come from the environment (gateway::runtime).
    let config = match gateway::runtime::RuntimeConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = config
        .build()
        .map_err(|e| format!("cannot start the Tokio runtime: {e}"));
    // Kept until `main` returns: the tasks requests spawned there finish in the shutdown.
    let threads = config
        .start_connection_threads()
        .map_err(|e| format!("cannot start the connection threads: {e}"));
    match runtime.and_then(|r| threads.map(|t| (r, t))) {
        Ok((runtime, threads)) => runtime.block_on(run(threads.clone())),
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(threads: Option<gateway::ConnectionThreads>) -> ExitCode {
    let log_format = match gateway::logging::LogFormat::from_env() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    gateway::logging::init(log_format);
    let mut config = match GatewayConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if config.upstream_url.is_none() && config.upstreams.is_empty() {
        match mock_upstream::spawn(mock_upstream::MockConfig::default()).await {
            Ok((addr, _task)) => {
                tracing::info!(
                    "neither UPSTREAM_URL nor GATEWAY_CONFIG is set: mock upstream started on http://{addr}"
                );
                config.upstream_url = Some(UpstreamUrl::local(addr));
                config.upstream_forward_headers = gateway::config::mock_headers();
            }
            Err(e) => {
                eprintln!("gateway: cannot start the mock upstream ({e}); set UPSTREAM_URL");
                return ExitCode::FAILURE;
            }
        }
    }
    let gateway = match Gateway::start(&config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "gateway: cannot listen on {} ({e}); set GATEWAY_ADDR to a free address",
                config.addr
            );
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(config.addr);
    tracing::info!(
        "gateway on http://{addr} — storage: {}, upstream: {}",
        gateway.storage().description,
        gateway.state().upstream.describe()
    );
    if gateway.otel().is_some() {
        tracing::info!(
            "OpenTelemetry: every record is also exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT)"
        );
    }
    tracing::info!(
        "try: curl -s -X POST http://{addr}/auth/register -H 'content-type: application/json' -d '{{\"email\":\"ada@example.com\"}}'"
    );

    let signal = async {
        gateway::shutdown_signal().await;
        gateway.close_live_feeds();
    };
    let options = gateway::ServeOptions {
        threads,
        ..gateway.serve_options()
    };
    let report = gateway::serve_with(listener, gateway.router(), signal, options).await;
    let stats = gateway.shutdown(WRITER_DEADLINE).await;
    tracing::info!(
        connections = report.connections,
        aborted = report.aborted,
        written = stats.written,
        dropped = stats.dropped_queue_full + stats.dropped_closed,
        failed = stats.failed,
        "stopped: {} activity records written, {} dropped, {} failed",
        stats.written,
        stats.dropped_queue_full + stats.dropped_closed,
        stats.failed,
    );
    // The other sinks (the OpenTelemetry export) are reported, but only the log decides the
    // exit code.
    for sink in gateway.writer().sink_stats() {
        let s = sink.stats;
        if &*sink.name != gateway::DATABASE_SINK && s.failed + s.dropped_queue_full > 0 {
            tracing::warn!(
                sink = &*sink.name,
                written = s.written,
                failed = s.failed,
                dropped = s.dropped_queue_full + s.dropped_closed,
                "sink {}: {} records not delivered",
                sink.name,
                s.failed + s.dropped_queue_full + s.dropped_closed,
            );
        }
    }
    if stats.failed > 0 || stats.dropped_queue_full + stats.dropped_closed > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
