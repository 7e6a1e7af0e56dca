//! `GET /metrics` (the OpenMetrics text format, which Prometheus scrapes) and `GET /healthz`.
//!
//! Built with `prometheus-client`. The LLM request metrics are counted from the activity
//! records by [`RecordMetrics`], an observer of the writer's `FanOut` named `metrics` (it reads
//! each record as the writer takes it, without a copy): their totals are those of the records
//! the writer took, the activity log's totals (exact tokens and cost included) unless the
//! database's lane dropped or failed some, which its `sink="database"` counters show.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `gateway_llm_requests_total` | counter | `route`, `outcome` (`ok`, `error`, `cancelled`, `interrupted`) |
//! | `gateway_llm_request_duration_seconds` | histogram | `route`, `outcome`: arrival to the end of the response body |
//! | `gateway_llm_model_requests_total` | counter | `model`, `provider` |
//! | `gateway_llm_time_to_first_token_seconds` | histogram | `model`, `provider` (streams) |
//! | `gateway_llm_tokens_total` | counter | `model`, `provider`, `type` (`input`, `output`, `cache_read`, `cache_write`, `reasoning`); an unknown count adds nothing |
//! | `gateway_llm_cost_usd_total` | counter | `model`, `provider`: the exact decimal sum, rounded once to a double |
//! | `gateway_budget_refusals_total` | counter | `status` (`402`, `429`): requests a budget refused (counted from the `budget.refused` events) |
//! | `activity_records_{enqueued,written,failed}_total`, `activity_records_dropped_total` (`reason`), `activity_sink_{retries,timeouts}_total`, `activity_batches_total`, `activity_batch_duration_seconds_total`, `activity_queue_depth`, `activity_last_batch_duration_seconds` | counters, gauges | `sink` (`database`, `metrics`, `otlp`): the writer's counters per sink |
//! | `activity_spool_records_total`, `activity_spool_replayed_records_total`, `activity_spool_dropped_records_total`, `activity_spool_bytes` | counters, gauge | `sink`: the crash-safe spool (`ACTIVITY_SPOOL_DIR`): records synced to disk, replayed at start after a crash or restart, lost because the spool was at its disk bound; its size now (0 for a sink without a spool) |
//!
//! `route` is the request's path with a Gemini model folded into `*` (`/v1/chat/completions`,
//! `/v1beta/models/*:generateContent` …).
//! Label values are bounded: past [`MAX_MODELS`] models, [`MAX_PROVIDERS`] providers and
//! [`MAX_ROUTES`] routes, later ones are counted as `other`; a record without a model or
//! provider counts as `unknown`.

mod records;
mod series;
mod writer;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::json;
use tower_activity::ActivityWriter;

pub use records::{MAX_MODELS, MAX_PROVIDERS, MAX_ROUTES, OTHER, RecordMetrics, UNKNOWN, route};

use crate::AppState;

/// The OpenMetrics text content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The name of [`RecordMetrics`] in the writer's `FanOut` (`sink="metrics"`: an observer's
/// counters: each record read counts as enqueued and written, and there are no batches).
pub const SINK_NAME: &str = "metrics";

/// Every metric `/metrics` shows (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of `records` (an observer of `writer`) and `writer`'s counters.
    pub fn new(records: &RecordMetrics, writer: &ActivityWriter) -> Self {
        let mut registry = Registry::default();
        records.register(&mut registry);
        registry.register_collector(Box::new(writer::WriterCollector(writer.clone())));
        Metrics {
            registry: Arc::new(registry),
        }
    }

    /// The OpenMetrics text of every metric, ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render();
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
