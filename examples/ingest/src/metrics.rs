//! `GET /metrics`: the ingester's counters, its consumer's lag and its recent rate, in the
//! Prometheus text format. Served from the start: until the ingester has its JetStream
//! consumer (it may wait up to 30 s for a leader election) `ingest_connected` reads 0 and the
//! counters 0.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_activity::ingest::{IngestStats, Ingester, Lag};

/// What `/metrics` reads.
#[derive(Clone, Default)]
pub struct Shared {
    /// The ingester, set once it has connected.
    pub ingester: Arc<OnceLock<Arc<Ingester>>>,
    /// Records written per second over the last progress interval (`f64` bits).
    pub rate: Arc<AtomicU64>,
}

impl Shared {
    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    pub fn set_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }
}

/// The `/metrics` route.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let body = match shared.ingester.get() {
        Some(ingester) => {
            let lag = ingester.lag().await.ok();
            render(true, &ingester.stats(), lag, shared.rate())
        }
        None => render(false, &IngestStats::default(), None, 0.0),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Whether the ingester has connected, its counters, the lag (absent when the server could
/// not be asked) and the rate.
pub fn render(connected: bool, s: &IngestStats, lag: Option<Lag>, rate: f64) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    let n = |v: u64| v as f64;
    metric(
        "ingest_connected",
        "gauge",
        "1 once the ingester has its JetStream consumer; 0 while it waits for it at startup.",
        f64::from(u8::from(connected)),
    );
    metric(
        "ingest_messages_received_total",
        "counter",
        "Messages received from the consumer, redeliveries included.",
        n(s.received),
    );
    metric(
        "ingest_records_written_total",
        "counter",
        "Records the database stored whose messages were then acknowledged.",
        n(s.written),
    );
    metric(
        "ingest_batches_total",
        "counter",
        "Batches handed to the database (records written / batches = the mean batch).",
        n(s.batches),
    );
    metric(
        "ingest_messages_redelivered_total",
        "counter",
        "Received messages JetStream had delivered before.",
        n(s.redelivered),
    );
    metric(
        "ingest_messages_retried_total",
        "counter",
        "Messages handed back for redelivery after a failed write.",
        n(s.retried),
    );
    metric(
        "ingest_sink_failures_total",
        "counter",
        "Database writes that failed (transiently, permanently or by timeout).",
        n(s.sink_failures),
    );
    metric(
        "ingest_messages_rejected_total",
        "counter",
        "Messages that can never be stored, terminated.",
        n(s.rejected),
    );
    metric(
        "ingest_consumer_errors_total",
        "counter",
        "Errors of the JetStream consumer itself.",
        n(s.consumer_errors),
    );
    metric(
        "ingest_ack_failures_total",
        "counter",
        "Acknowledgements that could not be sent.",
        n(s.ack_failures),
    );
    metric(
        "ingest_records_per_second",
        "gauge",
        "Records written per second over the last progress interval.",
        rate,
    );
    if let Some(lag) = lag {
        metric(
            "ingest_lag_pending_messages",
            "gauge",
            "Messages in the stream not yet delivered to any ingester.",
            n(lag.pending),
        );
        metric(
            "ingest_lag_unacknowledged_messages",
            "gauge",
            "Messages delivered and not yet acknowledged.",
            n(lag.ack_pending),
        );
    }
    out
}
