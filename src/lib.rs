//! Exact accounting for every LLM API request a tower service serves or proxies.
//!
//! Add one layer and every request is recorded — input, output, cached and reasoning tokens,
//! exact cost, time to first token, latency, tokens per second, finish reason, outcome, user
//! and session — through a pluggable [`ActivitySink`], without slowing or breaking the request:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use tower_activity::ActivityLayer;
//! use tower_activity::sink::MemorySink;
//! # let my_llm_proxy = tower::service_fn(|_req: http::Request<tower_activity::ActivityRequestBody<String>>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//! let (layer, writer) = ActivityLayer::pair(MemorySink::new());
//! let service = ServiceBuilder::new().layer(layer).service(my_llm_proxy);
//! // … serve `service` until the shutdown signal, then store what is still queued:
//! # drop(service);
//! let stats = writer.shutdown(Duration::from_secs(10)).await;
//! # assert_eq!(stats.failed, 0);
//! # }
//! ```
//!
//! `ActivityLayer::new(sink)` is the one-line form when something else drains the writer.
//! The public API comes in tiers: the crate root has the middleware (layer, service, future,
//! bodies), the record and its enums, [`ActivitySink`] and [`RecordObserver`], the writer and
//! the error types; [`sink`] has the concrete sinks, [`query`] the stats and log queries a
//! dashboard reads, [`pricing`] the price table.
//!
//! # What it reads
//!
//! The wire format comes from the path ([`LlmApi::detect`]): OpenAI chat (and every
//! OpenAI-compatible provider), OpenAI Responses, Anthropic Messages and Gemini, as JSON or as
//! SSE streams. Streams pass through unchanged and uncopied; the layer scans each frame as it
//! goes by, whatever the chunking. Token counts follow OpenTelemetry's `gen_ai.usage.*`
//! semantics: `input_tokens` includes cache reads and writes, `output_tokens` includes
//! reasoning. Unknown values are `null`, never `0`.
//!
//! # Estimates
//!
//! When a stream reports no usage (the client went away, the stream was cut, the provider
//! does not send it), the record says `usage_source: "estimated"`: output tokens are the
//! streamed text's characters divided by 4 (rounded up), input tokens the request's prompt
//! text characters divided by 4. OpenAI chat streams are asked for usage by default
//! ([`ActivityLayerBuilder::include_usage`]), so for them estimates are rare.
//!
//! # Cost
//!
//! [`PriceTable`](pricing::PriceTable) prices tokens exactly (decimal arithmetic, never `f64`); the default table is
//! embedded, generated from LiteLLM's price list. A model with no price gets `cost_usd: null`
//! and `metadata.pricing = "unknown_model"` — never a made-up price.
//!
//! # Write path
//!
//! Records go to a bounded queue and a background [`ActivityWriter`] batches them into the
//! sink, retrying transient failures and isolating a poison record. A full queue drops the
//! record and counts it ([`WriterStats`]); the request never waits. At the end of the program,
//! [`WriterGuard::shutdown`] (from [`ActivityLayer::pair`]) drains the queue.
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![warn(clippy::all)]

mod account;
mod attribution;
mod bill;
mod body;
mod bounds;
pub mod budget;
mod buf;
mod decode;
mod future;
#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzz;
mod guard;
#[cfg(feature = "nats")]
pub mod ingest;
mod layer;
pub mod pricing;
mod prompt;
mod protocol;
mod provider;
pub mod query;
mod reader;
mod record;
mod request;
mod rfc3339;
mod service;
mod settings;
mod settlement;
pub mod sink;
mod splice;
mod sse;
mod strip;
mod traceparent;
mod writer;

/// The README's code blocks, compiled as doctests so that the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use attribution::{Attribution, EventRecorder, Upstream};
pub use body::ActivityBody;
pub use future::ActivityFuture;
pub use layer::{ActivityLayer, ActivityLayerBuilder};
pub use pricing::PriceError;
pub use provider::ProviderRules;
pub use query::QueryError;
pub use record::{
    ActivityRecord, CostDetails, CostSource, Details, FinishReason, LlmApi, Metadata, MetadataIter,
    Outcome, ProviderError, RecordKind, UsageCounts, UsageSource,
};
pub use request::ActivityRequestBody;
pub use service::ActivityService;
pub use settlement::{Settle, Settlement};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use sink::StorageError;
pub use sink::{ActivitySink, RecordObserver, SinkError};
pub use writer::{
    ActivityWriter, SinkStats, SpoolConfig, WriterConfig, WriterError, WriterGuard, WriterStats,
};
