//! [`OtelSink`] (feature `otel`): records as OpenTelemetry GenAI spans and metrics over
//! OTLP/HTTP (protobuf).

mod client;
mod metrics;
mod names;
mod span;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_http::HttpClient;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{
    MetricExporter, RetryPolicy, SpanExporter, WithExportConfig as _, WithHttpConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SpanExporter as _;

use self::client::{RuntimeClient, with_status};
use self::metrics::Instruments;
use super::{ActivitySink, SinkError};
use crate::record::ActivityRecord;

/// Exports every record as an OpenTelemetry GenAI span, and GenAI metrics beside, over
/// OTLP/HTTP. Usually one sink of a [`FanOut`](super::FanOut) next to the database, so a
/// collector that is down never holds the database's records back.
///
/// # Spans
///
/// One span per record, sent by the writer's lane itself (the sink calls the OTLP exporter
/// directly, without the SDK's batch processor), so a batch is counted written only once the
/// collector accepted it, and retried or split like any other sink's.
///
/// - **Ids.** The span id is the last 8 bytes of the record id (random in a UUID v7), so an
///   export retried after a lost answer repeats the same span. A request that carried a valid
///   W3C `traceparent` (kept in `metadata.traceparent`) is a child of that span, in that
///   trace; otherwise the trace id is the record id.
/// - **Timing.** Start = the record's `timestamp`, end = start + `latency_ms`: the request's
///   own timing, not the export's.
/// - **Name and kind.** `"{gen_ai.operation.name} {model}"` (`chat gpt-4o`), kind `CLIENT`;
///   an event (login, registration, session created, budget thresholds) is an `INTERNAL`
///   span of zero duration named after the event, with the `activity.*` attributes only.
/// - **Status.** `ERROR` for outcome `error` (the provider's message as the description) and
///   `interrupted`; unset otherwise (a client that went away is not an error of the call).
///
/// | attribute | from the record |
/// |---|---|
/// | `gen_ai.operation.name` | `api`: `chat` (OpenAI chat and Responses, Anthropic), `generate_content` (Gemini), `embeddings`, `text_completion` (`/v1/completions`); absent for an unknown API |
/// | `gen_ai.provider.name` | `provider`: `openai`, `anthropic`, `gcp.gemini`, `mistral_ai`, `deepseek`, `x_ai`, `cohere`, else the provider in lower case (`meta`, `alibaba`) |
/// | `gen_ai.request.model`, `gen_ai.response.model` | `model` (the record keeps one name: the response's, else the request's) |
/// | `gen_ai.response.id` | `metadata.response_id`, when a tracker kept it |
/// | `gen_ai.response.finish_reasons` | `[finish_reason]` (normalised) |
/// | `gen_ai.request.stream` | `stream` |
/// | `gen_ai.usage.input_tokens`, `…output_tokens`, `…cache_read.input_tokens`, `…cache_creation.input_tokens`, `…reasoning.output_tokens` | `input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`, `reasoning_tokens`; **absent when unknown**, never 0 |
/// | `gen_ai.usage.cost.amount` | `cost_usd` as an exact decimal **string** (`"0.0000325"`), absent when unknown |
/// | `gen_ai.usage.cost.currency`, `…cost.source` | `USD`; `provider` (reported) or `local` (computed) |
/// | `gen_ai.response.time_to_first_chunk` | `ttft_ms` / 1000 (seconds) |
/// | `gen_ai.conversation.id` | `session_id` |
/// | `http.response.status_code`, `error.type` | `status_code`; for outcomes `error` and `interrupted`: the provider's error type, else (`error`) the status, else the outcome (`interrupted`: a stream's `200` says nothing of its failure) |
/// | `activity.id` | `id`, the response's `x-activity-id`: joins the span with its log row |
/// | `activity.kind`, `activity.outcome`, `activity.api`, `activity.endpoint`, `activity.usage_source`, `activity.upstream`, `activity.service_tier` | the fields of the same names |
/// | `activity.user_id`, `activity.session_id`, `activity.app` | the attribution |
/// | `activity.model`, `activity.provider` | `model`, `provider` exactly as in the log |
/// | `activity.cost_details.<part>`, `activity.usage_details.<part>` | each part (decimal string / count) |
///
/// Cost has no convention yet; the names are those of the open proposal
/// (`gen_ai.usage.cost.*`), with the amount as a string because a double would lose digits.
/// Prompt and completion text are never exported, nor the `metadata` tags.
///
/// # Metrics
///
/// Recorded for the records of each batch the collector accepted (a retried batch counts
/// once) and exported every `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s) with cumulative
/// temporality: `gen_ai.client.token.usage` (histogram, `{token}`, by `gen_ai.token.type` =
/// `input` / `output`), `gen_ai.client.operation.duration` (histogram, `s`, with `error.type`
/// on errors), `gen_ai.server.time_to_first_token` (histogram, `s`, streams), each with
/// `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model` and
/// `gen_ai.response.model`; and `activity.cost` (counter, `USD`, by `gen_ai.request.model` and
/// `gen_ai.provider.name`), observed from exact decimal sums, so only the exported value is
/// rounded (once, to a double). The cost counter keeps at most
/// [`OtelSink::MAX_COST_SERIES`] (model, provider) pairs; later models add to model `other`.
///
/// # Configuration
///
/// The builder's values win; otherwise the standard variables apply:
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL, default `http://localhost:4318`; `/v1/traces` and
/// `/v1/metrics` are appended), `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` (full URLs),
/// `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,…`, e.g. an API key), `OTEL_EXPORTER_OTLP_TIMEOUT`
/// (ms), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL` (ms).
/// Only `http/protobuf` is spoken. The default client speaks plain HTTP (a collector beside
/// the process); give [`OtelSinkBuilder::http_client`] a TLS-capable client for `https://`.
///
/// # Failures
///
/// No answer, a timeout, or a status other than 400, 413 and 422 is
/// [`SinkError::Transient`]: the writer retries the batch with backoff while the lane's queue
/// absorbs new records (the exporter's own retries are off, so the writer's counters see every
/// attempt). 400, 413 and 422 reject the batch itself: [`SinkError::Permanent`], so the writer
/// splits it and counts the spans the collector refuses on their own as failed.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_activity::ActivityLayer;
/// use tower_activity::sink::{FanOut, MemorySink, OtelSink};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let otel = OtelSink::builder()
///     .endpoint("http://127.0.0.1:4318") // else OTEL_EXPORTER_OTLP_ENDPOINT
///     .service_name("my-gateway")
///     .build()?;
/// let sinks = FanOut::new()
///     .sink("database", MemorySink::new())
///     .sink("otlp", otel.clone());
/// let (layer, writer) = ActivityLayer::pair(sinks);
/// // … serve with `layer` …
/// # let _ = layer;
/// writer.shutdown(Duration::from_secs(10)).await;
/// otel.shutdown().await; // exports the last metrics
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OtelSink {
    inner: Arc<Inner>,
}

struct Inner {
    spans: SpanExporter,
    scope: InstrumentationScope,
    meters: Option<SdkMeterProvider>,
    instruments: Option<Instruments>,
}

impl fmt::Debug for OtelSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelSink")
            .field("metrics", &self.inner.meters.is_some())
            .finish_non_exhaustive()
    }
}

impl OtelSink {
    /// The most (model, provider) pairs the `activity.cost` counter keeps apart; later models
    /// add to model `other`.
    pub const MAX_COST_SERIES: usize = metrics::MAX_COST_SERIES;

    /// A builder; [`OtelSinkBuilder::build`] with nothing set reads the `OTEL_*` variables.
    pub fn builder() -> OtelSinkBuilder {
        OtelSinkBuilder::default()
    }

    /// Exports the metrics recorded so far now, instead of at the next interval.
    pub async fn flush_metrics(&self) -> Result<(), OtelError> {
        let Some(meters) = self.inner.meters.clone() else {
            return Ok(());
        };
        // The SDK's reader blocks its caller until its thread has exported.
        tokio::task::spawn_blocking(move || meters.force_flush())
            .await
            .map_err(|e| OtelError::Export(e.to_string()))?
            .map_err(|e| OtelError::Export(e.to_string()))
    }

    /// Exports the last metrics and stops the metric reader; call it after the writer's
    /// shutdown. Spans need no shutdown: each batch is sent by the writer and answered.
    pub async fn shutdown(&self) -> Result<(), OtelError> {
        let Some(meters) = self.inner.meters.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || meters.shutdown())
            .await
            .map_err(|e| OtelError::Export(e.to_string()))?
            .map_err(|e| OtelError::Export(e.to_string()))
    }
}

#[async_trait]
impl ActivitySink for OtelSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        let batch = records
            .iter()
            .map(|r| span::span(r, &self.inner.scope))
            .collect();
        let (result, status) = with_status(self.inner.spans.export(batch)).await;
        if let Err(error) = result {
            let message = match status {
                Some(status) => format!("OTLP export refused with HTTP {status}: {error}"),
                None => format!("OTLP export failed: {error}"),
            };
            return Err(match status {
                Some(400 | 413 | 422) => SinkError::permanent(message),
                _ => SinkError::transient(message),
            });
        }
        if let Some(instruments) = &self.inner.instruments {
            instruments.record(records);
        }
        Ok(())
    }
}

/// Configures an [`OtelSink`]. Unset values come from the `OTEL_*` variables (module docs).
#[derive(Default)]
pub struct OtelSinkBuilder {
    endpoint: Option<String>,
    service_name: Option<String>,
    timeout: Option<Duration>,
    http_client: Option<Arc<dyn HttpClient>>,
    metrics: Option<bool>,
}

impl fmt::Debug for OtelSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelSinkBuilder")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("timeout", &self.timeout)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl OtelSinkBuilder {
    /// The collector's base URL (`http://127.0.0.1:4318`); `/v1/traces` and `/v1/metrics` are
    /// appended. Default: `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4318`.
    pub fn endpoint(mut self, base_url: impl Into<String>) -> Self {
        self.endpoint = Some(base_url.into());
        self
    }

    /// The resource's `service.name`, unless `OTEL_SERVICE_NAME` is set.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// How long one export may take (default: `OTEL_EXPORTER_OTLP_TIMEOUT`, else 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The HTTP client (default: hyper over plain HTTP). Give one with a TLS connector to
    /// export to an `https://` endpoint.
    pub fn http_client(mut self, client: impl HttpClient + 'static) -> Self {
        self.http_client = Some(Arc::new(client));
        self
    }

    /// Whether to export the GenAI metrics too (default `true`).
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = Some(on);
        self
    }

    /// Builds the sink. Call it inside a Tokio runtime: the exports run on it.
    pub fn build(self) -> Result<OtelSink, OtelError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtelError::NoRuntime)?;
        let timeout = self.timeout.unwrap_or(Duration::from_secs(10));
        let inner = self.http_client.unwrap_or_else(|| {
            Arc::new(HyperClient::with_default_connector(timeout, None)) as Arc<dyn HttpClient>
        });
        let client = RuntimeClient { inner, runtime };
        let mut resource = Resource::builder();
        if let Some(name) = self
            .service_name
            .filter(|_| std::env::var_os("OTEL_SERVICE_NAME").is_none())
        {
            resource = resource.with_service_name(name);
        }
        let resource = resource.build();
        let scope = InstrumentationScope::builder("tower-activity")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let url = |path: &str| {
            self.endpoint
                .as_ref()
                .map(|base| format!("{}{path}", base.trim_end_matches('/')))
        };

        let mut spans = SpanExporter::builder()
            .with_http()
            .with_http_client(client.clone())
            .with_retry_policy(RetryPolicy::disabled());
        if let Some(url) = url("/v1/traces") {
            spans = spans.with_endpoint(url);
        }
        if let Some(timeout) = self.timeout {
            spans = spans.with_timeout(timeout);
        }
        let mut spans = spans
            .build()
            .map_err(|e| OtelError::Config(e.to_string()))?;
        spans.set_resource(&resource);

        let (meters, instruments) = if self.metrics.unwrap_or(true) {
            let mut exporter = MetricExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_retry_policy(RetryPolicy::disabled());
            if let Some(url) = url("/v1/metrics") {
                exporter = exporter.with_endpoint(url);
            }
            if let Some(timeout) = self.timeout {
                exporter = exporter.with_timeout(timeout);
            }
            let exporter = exporter
                .build()
                .map_err(|e| OtelError::Config(e.to_string()))?;
            let meters = SdkMeterProvider::builder()
                .with_resource(resource)
                .with_reader(PeriodicReader::builder(exporter).build())
                .build();
            let instruments = Instruments::new(&meters.meter_with_scope(scope.clone()));
            (Some(meters), Some(instruments))
        } else {
            (None, None)
        };
        Ok(OtelSink {
            inner: Arc::new(Inner {
                spans,
                scope,
                meters,
                instruments,
            }),
        })
    }
}

/// Why an [`OtelSink`] could not be built, or its metrics not exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// [`OtelSinkBuilder::build`] was called outside a Tokio runtime.
    #[error("OtelSink must be built inside a Tokio runtime (its exports run on it)")]
    NoRuntime,
    /// The endpoint, headers or another setting is invalid (the message names it).
    #[error(
        "invalid OpenTelemetry exporter configuration: {0}; check the endpoint and the OTEL_EXPORTER_OTLP_* variables"
    )]
    Config(String),
    /// An export of the metrics failed.
    #[error("OpenTelemetry metric export failed: {0}")]
    Export(String),
}
