//! [`ActivitySink`]: where records go, and the sinks that need no setup.
//!
//! A sink receives batches from the [`ActivityWriter`](crate::ActivityWriter), never from the
//! request path, so it may be as slow as its storage is: the writer's bounded queue absorbs the
//! traffic meanwhile. The sinks of this module:
//!
//! - [`MemorySink`]: keeps records in memory (tests, demos), idempotent on `id` like a real store.
//! - [`TracingSink`]: one JSON `tracing` event per record.
//! - [`NoopSink`]: discards everything (benchmarks).
//! - `PostgresSink` (feature `postgres`) and `SqliteSink` (feature `sqlite`): the SQL stores,
//!   with the activity queries; `SqlSink::connect(url)` picks one from a URL.
//! - [`BroadcastSink`]: wraps any sink and publishes each stored record to live subscribers.
//! - `OtelSink` (feature `otel`): every record as an OpenTelemetry GenAI span, and GenAI
//!   metrics, over OTLP/HTTP.
//! - `NatsSink` (feature `nats`): every record into a JetStream stream, for a fleet of
//!   gateways whose ingesters (`tower_activity::ingest`) write the database.
//!
//! [`FanOut`] names several sinks for one writer: each gets every record through its own queue.
//! A [`RecordObserver`] in a `FanOut` reads each record on the caller's thread instead, without
//! a copy or a queue: for counters in memory (the gateway's `/metrics`).

use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;

use crate::record::ActivityRecord;

mod broadcast;
mod fanout;
pub(crate) mod json_text;
mod memory;
#[cfg(feature = "nats")]
pub(crate) mod nats;
mod observer;
#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql_sink;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tracing;

pub use self::broadcast::{BroadcastSink, DEFAULT_BROADCAST_CAPACITY};
pub use self::fanout::FanOut;
pub(crate) use self::fanout::Member;
pub use self::memory::MemorySink;
#[cfg(feature = "nats")]
pub use self::nats::{
    DEFAULT_NATS_URL, DEFAULT_STREAM, DEFAULT_SUBJECT, NatsError, NatsSink, NatsSinkBuilder,
    StreamConfig,
};
pub use self::observer::RecordObserver;
#[cfg(feature = "otel")]
pub use self::otel::{OtelError, OtelSink, OtelSinkBuilder};
#[cfg(feature = "postgres")]
pub use self::postgres::{
    DEFAULT_COPY_THRESHOLD, DEFAULT_PARTITIONS_AHEAD, PartitionPeriod, PostgresSink,
};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use self::sql::{StorageError, TableNames};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use self::sql_sink::SqlSink;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteSink;
pub use self::tracing::{NoopSink, TracingSink};

/// The boxed cause carried by a [`SinkError`].
type BoxError = Box<dyn Error + Send + Sync>;

/// Why a sink could not write a batch; the variant tells the writer what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying the same batch later (a lost connection, a timeout, a full pool): the
    /// writer retries it with exponential backoff until it succeeds or the shutdown deadline
    /// passes.
    #[error("transient sink failure: {0}")]
    Transient(#[source] BoxError),
    /// This batch will never succeed as it is (a constraint, a value the store rejects): the
    /// writer splits it to isolate the record(s) at fault, writes the others, and counts each
    /// record that fails on its own as failed.
    #[error("permanent sink failure: {0}")]
    Permanent(#[source] BoxError),
}

impl SinkError {
    /// A [`SinkError::Transient`] from any error or message
    /// (`SinkError::transient("pool timed out")`).
    pub fn transient(cause: impl Into<BoxError>) -> Self {
        SinkError::Transient(cause.into())
    }

    /// A [`SinkError::Permanent`] from any error or message.
    pub fn permanent(cause: impl Into<BoxError>) -> Self {
        SinkError::Permanent(cause.into())
    }

    /// Whether retrying the same batch may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient(_))
    }
}

/// Where records go: a database table, a log, a queue, your own store.
///
/// The [`ActivityWriter`](crate::ActivityWriter) calls [`write`](ActivitySink::write) from one
/// background task, one call at a time, with batches of at most
/// [`WriterConfig::batch_size`](crate::WriterConfig::batch_size) records. The contract:
///
/// - **Batches.** Write the whole slice, ideally in one round trip (one transaction, one
///   multi-row insert). Return `Ok(())` only once every record is durably stored.
/// - **Idempotent on [`ActivityRecord::id`].** A retried batch may contain records that an
///   earlier attempt already stored (the connection dropped after the commit, the write was
///   cancelled at a shutdown deadline), and a split batch is written again in parts. Writing a
///   record whose `id` is already stored must succeed and keep one copy (`INSERT … ON CONFLICT
///   (id) DO NOTHING`).
/// - **[`SinkError::Transient`]** means "retry the same batch later": the writer backs off
///   exponentially and tries again, while its queue keeps absorbing new records.
/// - **[`SinkError::Permanent`]** means "this batch will never succeed as it is": the writer
///   isolates the poison record by splitting the batch (halves, down to single records), writes
///   the good records, and counts each record rejected on its own as failed, logging its `id`.
///   Do not return `Permanent` for the whole store being unavailable: that is transient.
/// - A panic inside `write` is caught and handled like [`SinkError::Permanent`].
///
/// Share a sink between a writer and your own code through an [`Arc`]: `Arc<S>` and
/// `Arc<dyn ActivitySink>` are sinks too.
///
/// ```
/// use async_trait::async_trait;
/// use tower_activity::{ActivityRecord, ActivitySink, SinkError};
///
/// struct StdoutSink;
///
/// #[async_trait]
/// impl ActivitySink for StdoutSink {
///     async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
///         for record in records {
///             let line = serde_json::to_string(record).map_err(SinkError::permanent)?;
///             println!("{line}");
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait ActivitySink: Send + Sync + 'static {
    /// Writes a batch of records; idempotent on `record.id` (see the trait docs).
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError>;

    /// Whether the sink keeps what it is given beyond the life of the process (a database, a
    /// message stream, a collector): `true` unless overridden. A writer's
    /// [spool](crate::SpoolConfig) stands only in front of durable sinks. A sink whose state
    /// lives in the process (counters for `/metrics`, a feed to connected clients) answers
    /// `false`: a crash loses its state anyway, so spooling its records would only cost a
    /// serialization, a disk write and a sync per record, and replay a dead process's records
    /// into the next one's counters.
    fn durable(&self) -> bool {
        true
    }
}

#[async_trait]
impl<T: ActivitySink + ?Sized> ActivitySink for Arc<T> {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        (**self).write(records).await
    }

    fn durable(&self) -> bool {
        (**self).durable()
    }
}

#[async_trait]
impl<T: ActivitySink + ?Sized> ActivitySink for Box<T> {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        (**self).write(records).await
    }

    fn durable(&self) -> bool {
        (**self).durable()
    }
}
