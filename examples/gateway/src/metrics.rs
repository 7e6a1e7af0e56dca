//! `GET /metrics` (Prometheus text format) and `GET /healthz`.
//!
//! The metrics are the activity writer's [`WriterStats`]: every record the gateway made is
//! enqueued, then written or failed, or dropped at once (by reason); `queue_depth` is what is
//! still on its way to the database.

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_activity::WriterStats;

use crate::AppState;

/// The Prometheus text exposition content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = render(&state.writer.stats());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// `GET /healthz`: `200 {"status": "ok"}` while the activity writer accepts records, `503`
/// once it is shut down.
pub async fn healthz(State(state): State<AppState>) -> Response {
    if state.writer.is_closed() {
        let body = json!({ "status": "shutting_down" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({ "status": "ok" })).into_response()
}

/// The writer's counters in the Prometheus text format.
pub fn render(s: &WriterStats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let n = |v: u64| v as f64;
    metric(
        "activity_records_enqueued_total",
        "counter",
        "Activity records accepted into the writer's queue.",
        &[("", n(s.enqueued))],
    );
    metric(
        "activity_records_written_total",
        "counter",
        "Activity records the database confirmed.",
        &[("", n(s.written))],
    );
    metric(
        "activity_records_dropped_total",
        "counter",
        "Activity records refused at once, by reason.",
        &[
            ("{reason=\"queue_full\"}", n(s.dropped_queue_full)),
            ("{reason=\"closed\"}", n(s.dropped_closed)),
        ],
    );
    metric(
        "activity_records_failed_total",
        "counter",
        "Accepted activity records that were never written (rejected, or past the shutdown deadline).",
        &[("", n(s.failed))],
    );
    metric(
        "activity_sink_retries_total",
        "counter",
        "Sink calls repeated after a transient failure or a timeout.",
        &[("", n(s.retried))],
    );
    metric(
        "activity_sink_timeouts_total",
        "counter",
        "Sink calls abandoned after the writer's sink timeout (then retried).",
        &[("", n(s.sink_timeouts))],
    );
    metric(
        "activity_queue_depth",
        "gauge",
        "Activity records accepted but not yet written.",
        &[("", n(s.queue_depth))],
    );
    metric(
        "activity_batch_duration_seconds",
        "summary",
        "Time to write a batch, retries and splits included.",
        &[
            ("_sum", s.batch_micros_total as f64 / 1e6),
            ("_count", n(s.batches)),
        ],
    );
    metric(
        "activity_last_batch_duration_seconds",
        "gauge",
        "Time the last batch took to write.",
        &[("", s.last_batch_micros as f64 / 1e6)],
    );
    out
}
