//! [`NatsSink`] (feature `nats`): records into a JetStream stream, for a fleet of gateways
//! whose ingesters write the database.

mod error;
mod patience;
mod stream;

/// The most publishes of one write awaiting their acknowledgement (the client allows 5,000
/// in all: five writes at once never wait on each other).
const PIPELINE: usize = 1_000;

use std::fmt;
use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use super::{ActivitySink, SinkError};
use crate::record::ActivityRecord;

pub use self::error::NatsError;
pub(crate) use self::patience::patiently;
pub(crate) use self::stream::connect;
pub use self::stream::{DEFAULT_STREAM, DEFAULT_SUBJECT, StreamConfig};

/// The default NATS URL.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Publishes every record to a JetStream stream. Cheap to clone: clones share the
/// connection.
///
/// # Messages
///
/// Each record is one message on [`StreamConfig::subject`] (default `activity.records`) of
/// stream [`StreamConfig::name`] (default `ACTIVITY`, created if missing): its JSON (the
/// [`ActivityRecord`] serde form, as [`TracingSink`](super::TracingSink) logs it), with header
/// `Nats-Msg-Id` = the record's id. JetStream drops a message whose id it has seen within its
/// duplicate window, and the database's `ON CONFLICT (id) DO NOTHING` drops any later copy, so
/// a batch retried after a lost acknowledgement stores every record once: exactly-once in
/// effect, end to end.
///
/// # Batches
///
/// A batch's messages are published back to back (pipelined, without waiting for each
/// acknowledgement), at most 1,000 unacknowledged at a time: the client holds a permit
/// for each until its acknowledgement is read, and it has 5,000, so a larger batch sent whole
/// before reading any would wait forever for its own permits. The batch is written when every
/// acknowledgement came back; a missing or negative acknowledgement (no stream, a timeout, a
/// lost connection, a cluster electing a leader) is [`SinkError::Transient`], so the writer
/// retries the batch with backoff and the duplicate window absorbs what had landed. A record
/// larger than the server's `max_payload` is [`SinkError::Permanent`] (the writer isolates it).
///
/// # Connection
///
/// [`NatsSinkBuilder::url`] takes one URL or a comma-separated list (a cluster's servers).
/// Building fails at once when no server answers; once connected, the client reconnects by
/// itself (to any server of the cluster) while the writer's queue absorbs the records.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_activity::ActivityLayer;
/// use tower_activity::sink::{NatsSink, StreamConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = NatsSink::builder()
///     .url("nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222")
///     .stream(StreamConfig::default().with_replicas(3))
///     .build()
///     .await?;
/// let (layer, writer) = ActivityLayer::pair(sink);
/// // … serve with `layer`; ingesters (`tower_activity::ingest`) write the database …
/// # let _ = layer;
/// writer.shutdown(Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsSink {
    jetstream: jetstream::Context,
    client: async_nats::Client,
    subject: async_nats::Subject,
    stream: String,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("stream", &self.stream)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Builds a [`NatsSink`]: [`NatsSink::builder`].
#[derive(Debug, Clone)]
pub struct NatsSinkBuilder {
    url: String,
    stream: StreamConfig,
    ack_timeout: Duration,
    name: String,
}

impl NatsSink {
    /// A builder with the defaults: [`DEFAULT_NATS_URL`], [`StreamConfig::default`], acks
    /// awaited 5 s.
    pub fn builder() -> NatsSinkBuilder {
        NatsSinkBuilder {
            url: DEFAULT_NATS_URL.to_owned(),
            stream: StreamConfig::default(),
            ack_timeout: Duration::from_secs(5),
            name: "tower-activity".to_owned(),
        }
    }

    /// Connects to `url` with the default stream.
    pub async fn connect(url: &str) -> Result<NatsSink, NatsError> {
        NatsSink::builder().url(url).build().await
    }

    /// The stream records go to.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The subject records are published on.
    pub fn subject(&self) -> &str {
        self.subject.as_str()
    }

    /// The NATS connection (shared by the clones).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

impl NatsSinkBuilder {
    /// The server(s): one NATS URL or several separated by commas. Default
    /// [`DEFAULT_NATS_URL`].
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The stream and subject, and how the stream is created when missing.
    pub fn stream(mut self, stream: StreamConfig) -> Self {
        self.stream = stream;
        self
    }

    /// How long a batch waits for its acknowledgements before it is a transient failure.
    /// Default 5 s; keep it under the writer's `sink_timeout`.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// The connection's name, as the server's monitoring shows it. Default `tower-activity`.
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Connects and creates the stream if missing. While JetStream answers that it is
    /// temporarily unavailable (a cluster electing a leader) it tries again, for up to 30 s
    /// ([`NatsError::is_transient`]).
    pub async fn build(self) -> Result<NatsSink, NatsError> {
        let client = connect(&self.url, &self.name).await?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(self.ack_timeout)
            .backpressure_on_inflight(true)
            .build(client.clone());
        patiently("the activity stream", || self.stream.ensure(&jetstream)).await?;
        Ok(NatsSink {
            jetstream,
            client,
            subject: async_nats::Subject::from(self.stream.subject.as_str()),
            stream: self.stream.name,
        })
    }
}

/// A record as a message payload.
fn encode(record: &ActivityRecord, max_payload: usize) -> Result<Bytes, SinkError> {
    let payload = serde_json::to_vec(record).map_err(SinkError::permanent)?;
    if payload.len() > max_payload {
        return Err(SinkError::permanent(format!(
            "record {} is {} bytes as JSON, over the server's max_payload of {max_payload}",
            record.id,
            payload.len()
        )));
    }
    Ok(payload.into())
}

#[async_trait]
impl ActivitySink for NatsSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        let max_payload = self.client.server_info().max_payload;
        let max_payload = if max_payload == 0 {
            usize::MAX
        } else {
            max_payload
        };
        let payloads = records
            .iter()
            .map(|r| encode(r, max_payload))
            .collect::<Result<Vec<_>, _>>()?;
        let mut acks = FuturesUnordered::new();
        let (mut failed, mut first) = (0, None);
        let mut settle = |answer: Result<_, _>| {
            if let Err(e) = answer {
                failed += 1;
                first.get_or_insert(e);
            }
        };
        for (record, payload) in records.iter().zip(payloads) {
            if acks.len() >= PIPELINE {
                if let Some(answer) = acks.next().await {
                    settle(answer);
                }
            }
            let publish = PublishMessage::build()
                .payload(payload)
                .message_id(record.id.hyphenated().to_string());
            let ack = self
                .jetstream
                .send_publish(self.subject.clone(), publish)
                .await
                .map_err(SinkError::transient)?;
            acks.push(ack.into_future());
        }
        while let Some(answer) = acks.next().await {
            settle(answer);
        }
        match first {
            None => Ok(()),
            Some(first) => Err(SinkError::transient(format!(
                "{failed} of {} records not acknowledged by stream {} (first: {first})",
                records.len(),
                self.stream
            ))),
        }
    }
}
