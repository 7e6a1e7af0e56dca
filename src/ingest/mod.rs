//! The ingester (feature `nats`): a durable JetStream pull consumer that writes the records
//! [`NatsSink`](crate::sink::NatsSink)s published into any [`ActivitySink`], usually a
//! `PostgresSink`. The `ingest` program (`examples/ingest`) runs one.
//!
//! - **Acknowledged after the commit.** A message is acknowledged only once the sink has
//!   stored its record. A sink failure (or timeout) hands the batch back with a negative
//!   acknowledgement and a delay that doubles with each delivery; an ingester that dies holds
//!   nothing JetStream will not redeliver after [`IngestConfig::ack_wait`]. A record may so be
//!   written twice, and the sink keeps one copy (`ON CONFLICT (id) DO NOTHING`): with the
//!   publishers' `Nats-Msg-Id`, every record is stored exactly once in effect.
//! - **Shared work.** Ingesters with the same [`IngestConfig::durable`] name share one
//!   consumer: JetStream spreads the messages among them, and one that stops leaves its share
//!   to the others.
//! - **Bounded.** One ingester holds at most [`IngestConfig::in_flight`] batches being
//!   written, one being gathered, and one pull's worth of messages; the consumer's
//!   [`IngestConfig::max_ack_pending`] bounds what all of them hold together.
//! - **Poison.** A message that is not a record, or a record the sink refuses on its own
//!   ([`SinkError::Permanent`](crate::SinkError::Permanent) for it alone), is terminated
//!   (never redelivered), logged with its id and counted in [`IngestStats::rejected`].
//! - **Graceful drain.** When [`Ingester::run`]'s shutdown future completes, it stops pulling,
//!   writes the batch it was gathering, waits for the batches being written, hands back what
//!   was received but not batched, and returns its counters.
//!
//! ```no_run
//! use tower_activity::ingest::{IngestConfig, Ingester};
//! use tower_activity::sink::PostgresSink;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = PostgresSink::connect("postgres://postgres@127.0.0.1/activity").await?;
//! let ingester = Ingester::connect("nats://127.0.0.1:4222", IngestConfig::default()).await?;
//! let stats = ingester.run(&sink, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! println!("{} records written", stats.written);
//! # Ok(()) }
//! ```

mod batch;
mod config;
mod stats;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, Message};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::time::{Instant, sleep, sleep_until};

use crate::sink::nats::{connect, patiently};
use crate::sink::{ActivitySink, NatsError};

pub use self::config::IngestConfig;
use self::stats::Counters;
pub use self::stats::IngestStats;

/// How long a pull request stays open, and the server's heartbeat within it (a silent server
/// is noticed after two missed heartbeats).
const PULL_EXPIRES: Duration = Duration::from_secs(10);
const PULL_HEARTBEAT: Duration = Duration::from_secs(3);
/// The wait before opening the consumer again after it failed.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// A durable pull consumer of the activity stream; [`run`](Ingester::run) writes what it
/// receives into a sink. See the [module docs](self).
pub struct Ingester {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    consumer: PullConsumer,
    config: IngestConfig,
    counters: Arc<Counters>,
}

impl fmt::Debug for Ingester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingester")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How far the consumer is behind the stream ([`Ingester::lag`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lag {
    /// Messages in the stream not yet delivered to any ingester.
    pub pending: u64,
    /// Messages delivered and not yet acknowledged (being written, or waiting for
    /// redelivery).
    pub ack_pending: u64,
}

impl Ingester {
    /// Connects to `url` (one NATS URL, or several separated by commas), creates the stream if
    /// missing, and opens (or creates) the durable consumer. While JetStream answers that it
    /// is temporarily unavailable (a cluster electing a leader after losing a server) it tries
    /// again, for up to 30 s ([`NatsError::is_transient`]).
    pub async fn connect(url: &str, config: IngestConfig) -> Result<Ingester, NatsError> {
        config.validate().map_err(|e| {
            NatsError::new(
                "invalid ingester configuration".to_owned(),
                "fix the value",
                e,
            )
        })?;
        let client = connect(url, "tower-activity-ingest").await?;
        let jetstream = jetstream::new(client.clone());
        let consumer =
            patiently("the ingest consumer", || open_consumer(&jetstream, &config)).await?;
        Ok(Ingester {
            client,
            jetstream,
            consumer,
            config,
            counters: Arc::default(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> IngestStats {
        self.counters.snapshot()
    }

    /// The configuration.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// How far the consumer is behind, as the server counts (all ingesters together).
    pub async fn lag(&self) -> Result<Lag, NatsError> {
        let info = self.consumer.get_info().await.map_err(|e| {
            NatsError::new(
                format!("cannot read consumer {}", self.config.durable),
                "is the NATS server reachable?",
                e,
            )
        })?;
        Ok(Lag {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
        })
    }

    /// Writes what the consumer delivers into `sink` until `shutdown` completes, then drains
    /// (see the [module docs](self)) and returns the counters. Failures of NATS or of the sink
    /// are logged, counted and retried; they never end the run.
    pub async fn run<S: ActivitySink + ?Sized>(
        &self,
        sink: &S,
        shutdown: impl Future<Output = ()>,
    ) -> IngestStats {
        let mut shutdown = std::pin::pin!(shutdown);
        let (size, wait) = (self.config.batch_size, self.config.batch_wait);
        let mut writing = FuturesUnordered::new();
        let mut gathering: Vec<Message> = Vec::with_capacity(size);
        let mut due: Option<Instant> = None;
        let mut consumer = self.consumer.clone();
        let mut messages: Option<pull::Stream> = None;
        loop {
            let Some(stream) = messages.as_mut() else {
                match self.pull(&mut consumer).await {
                    Ok(stream) => messages = Some(stream),
                    Err(e) => {
                        Counters::add(&self.counters.consumer_errors, 1);
                        tracing::warn!(error = %e, "cannot pull from the activity stream: trying again");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = sleep(REOPEN_DELAY) => {}
                        }
                    }
                }
                continue;
            };
            let room = writing.len() < self.config.in_flight;
            let ready = gathering.len() >= size || due.is_some_and(|d| Instant::now() >= d);
            if room && ready && !gathering.is_empty() {
                let batch = std::mem::replace(&mut gathering, Vec::with_capacity(size));
                writing.push(batch::process(sink, batch, &self.config, &self.counters));
                due = None;
                continue;
            }
            let event = tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(()) = writing.next(), if !writing.is_empty() => None,
                () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() && room => None,
                next = stream.next(), if gathering.len() < size => Some(next),
            };
            match event {
                None => {}
                Some(Some(Ok(message))) => {
                    if gathering.is_empty() {
                        due = Some(Instant::now() + wait);
                    }
                    gathering.push(message);
                }
                Some(Some(Err(e))) => {
                    Counters::add(&self.counters.consumer_errors, 1);
                    tracing::warn!(error = %e, "activity stream consumer");
                }
                Some(None) => {
                    Counters::add(&self.counters.consumer_errors, 1);
                    tracing::warn!("the activity stream's pull ended: opening the consumer again");
                    messages = None;
                }
            }
        }
        // Drain: what was gathered is written; what arrived but was not gathered goes back.
        let mut unbatched = Vec::new();
        if let Some(stream) = messages.as_mut() {
            while let Some(Some(Ok(message))) = stream.next().now_or_never() {
                unbatched.push(message);
            }
        }
        drop(messages);
        if !gathering.is_empty() {
            writing.push(batch::process(
                sink,
                gathering,
                &self.config,
                &self.counters,
            ));
        }
        while writing.next().await.is_some() {}
        if !unbatched.is_empty() {
            Counters::add(&self.counters.received, unbatched.len());
            Counters::add(&self.counters.retried, unbatched.len());
            let naks = unbatched.iter().map(|m| m.ack_with(AckKind::Nak(None)));
            let _ = futures_util::future::join_all(naks).await;
        }
        if let Err(e) = self.client.flush().await {
            tracing::warn!(error = %e, "the last acknowledgements may not have been sent (they will be redelivered, and ignored as duplicates)");
        }
        self.stats()
    }

    /// The consumer's message stream; after a failure, the consumer is opened again first
    /// (it may have been recreated, or the stream too).
    async fn pull(&self, consumer: &mut PullConsumer) -> Result<pull::Stream, NatsError> {
        let stream = consumer
            .stream()
            .max_messages_per_batch(self.config.batch_size)
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await;
        match stream {
            Ok(stream) => Ok(stream),
            Err(_) => {
                *consumer = open_consumer(&self.jetstream, &self.config).await?;
                consumer
                    .stream()
                    .max_messages_per_batch(self.config.batch_size)
                    .expires(PULL_EXPIRES)
                    .heartbeat(PULL_HEARTBEAT)
                    .messages()
                    .await
                    .map_err(|e| {
                        NatsError::new(
                            format!("cannot pull from consumer {}", self.config.durable),
                            "is the NATS server reachable?",
                            e,
                        )
                    })
            }
        }
    }
}

/// The durable consumer (created if missing) on the stream (created if missing).
async fn open_consumer(
    jetstream: &jetstream::Context,
    config: &IngestConfig,
) -> Result<PullConsumer, NatsError> {
    let stream = config.stream.ensure(jetstream).await?;
    stream
        .get_or_create_consumer(
            &config.durable,
            pull::Config {
                durable_name: Some(config.durable.clone()),
                filter_subject: config.stream.subject.clone(),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: i64::try_from(config.max_ack_pending).unwrap_or(i64::MAX),
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            NatsError::new(
                format!(
                    "cannot open or create the durable consumer {} on stream {}",
                    config.durable, config.stream.name
                ),
                "is JetStream reachable, and was the consumer created with another configuration?",
                e,
            )
        })
}
