//! Exact accounting for every LLM API request a tower service serves or proxies.
//!
//! Add one layer and every request is recorded — input, output, cached and reasoning tokens,
//! exact cost, time to first token, latency, tokens per second, finish reason, outcome, user
//! and session — through a pluggable [`ActivitySink`], without slowing or breaking the request:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use tower::ServiceBuilder;
//! use tower_activity::{ActivityLayer, MemorySink};
//! # let my_llm_proxy = tower::service_fn(|_req: http::Request<tower_activity::RequestBody<String>>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//! let sink = MemorySink::new();
//! let service = ServiceBuilder::new()
//!     .layer(ActivityLayer::new(sink.clone()))
//!     .service(my_llm_proxy);
//! # let _ = service;
//! # }
//! ```
//!
//! # What it reads
//!
//! The wire format comes from the path ([`Api::detect`]): OpenAI chat (and every
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
//! [`PriceTable`] prices tokens exactly (decimal arithmetic, never `f64`); the default table is
//! embedded, generated from LiteLLM's price list. A model with no price gets `cost_usd: null`
//! and `metadata.pricing = "unknown_model"` — never a made-up price.
//!
//! # Write path
//!
//! Records go to a bounded queue and a background [`ActivityWriter`] batches them into the
//! sink, retrying transient failures and isolating a poison record. A full queue drops the
//! record and counts it ([`WriterStats`]); the request never waits. Call
//! [`ActivityWriter::shutdown`] at the end of the program to drain the queue.
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![warn(clippy::all)]

mod account;
mod attribution;
mod body;
mod buf;
mod future;
#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzz;
mod guard;
mod layer;
mod pricing;
mod protocol;
mod provider;
mod query;
mod reader;
mod record;
mod request;
mod service;
mod settings;
mod sink;
mod sse;
mod strip;
mod writer;

/// The README's code blocks, compiled as doctests so that the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use attribution::{Attribution, EventRecorder, Upstream};
pub use body::ActivityBody;
pub use future::ActivityFuture;
pub use layer::{
    ActivityLayer, ActivityLayerBuilder, DEFAULT_MAX_REQUEST_BODY, DEFAULT_MAX_RESPONSE_BODY,
    DEFAULT_MAX_SSE_LINE,
};
pub use pricing::{ModelPrice, PriceError, PriceTable, TokenUsage};
pub use provider::ProviderRules;
pub use query::{
    ActivityQuery, Breakdown, Cursor, DEFAULT_LOG_LIMIT, DEFAULT_STATS_DAYS, DailyStat, LogPage,
    LogQuery, MAX_LOG_LIMIT, MAX_RANGE_DAYS, QueryError, Stats, StatsBuilder, StatsQuery,
};
pub use record::{
    ActivityError, ActivityRecord, Api, FinishReason, Kind, MAX_ERROR_MESSAGE, Outcome, UsageSource,
};
pub use request::RequestBody;
pub use service::ActivityService;
#[cfg(feature = "postgres")]
pub use sink::PostgresSink;
#[cfg(feature = "sqlite")]
pub use sink::SqliteSink;
pub use sink::{
    ActivitySink, BroadcastSink, DEFAULT_BROADCAST_CAPACITY, MemorySink, NoopSink, SinkError,
    TracingSink,
};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use sink::{SqlSink, StorageError, TableNames};
pub use writer::{ActivityWriter, WriterConfig, WriterError, WriterStats};
