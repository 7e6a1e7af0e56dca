//! [`IngestConfig`]: an ingester's consumer and tuning.

use std::time::Duration;

use crate::sink::StreamConfig;

/// An ingester's tuning. Build it from [`IngestConfig::default`] with the `with_*` methods.
///
/// | knob | default | meaning |
/// |---|---|---|
/// | [`stream`](Self::stream) | [`StreamConfig::default`] | the stream (created if missing) and the subject consumed |
/// | [`durable`](Self::durable) | `ingest` | the durable consumer's name: ingesters with the same name share the work |
/// | [`batch_size`](Self::batch_size) | 1,000 | records per sink call at most |
/// | [`batch_wait`](Self::batch_wait) | 50 ms | how long a partial batch waits for more messages |
/// | [`in_flight`](Self::in_flight) | 2 | batches being written at once by one ingester |
/// | [`ack_wait`](Self::ack_wait) | 60 s | how long JetStream waits for an acknowledgement before it redelivers (set when the consumer is created) |
/// | [`max_ack_pending`](Self::max_ack_pending) | 20,000 | messages delivered but not yet acknowledged, all ingesters together (set when the consumer is created) |
/// | [`sink_timeout`](Self::sink_timeout) | 30 s | how long one sink call may take before it counts as a transient failure |
/// | [`retry_backoff`](Self::retry_backoff) | 250 ms | redelivery delay after the first failed write of a message, doubled with each delivery |
/// | [`max_backoff`](Self::max_backoff) | 10 s | the longest redelivery delay |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestConfig {
    /// The stream consumed, and how it is created when the ingester starts first.
    pub stream: StreamConfig,
    /// The durable consumer's name. Default `ingest`.
    pub durable: String,
    /// Records per sink call at most. Default 1,000; at least 1.
    pub batch_size: usize,
    /// How long a partial batch waits, from its first message, for more. Default 50 ms.
    pub batch_wait: Duration,
    /// Batches one ingester writes at once. Default 2; at least 1.
    pub in_flight: usize,
    /// The consumer's acknowledgement wait. Default 60 s; keep it above `sink_timeout`.
    pub ack_wait: Duration,
    /// The consumer's limit of unacknowledged messages. Default 20,000.
    pub max_ack_pending: usize,
    /// The longest one sink call may take. Default 30 s.
    pub sink_timeout: Duration,
    /// The first redelivery delay after a failed write. Default 250 ms.
    pub retry_backoff: Duration,
    /// The longest redelivery delay. Default 10 s.
    pub max_backoff: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            stream: StreamConfig::default(),
            durable: "ingest".to_owned(),
            batch_size: 1_000,
            batch_wait: Duration::from_millis(50),
            in_flight: 2,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 20_000,
            sink_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl IngestConfig {
    /// Sets [`stream`](Self::stream).
    pub fn with_stream(mut self, stream: StreamConfig) -> Self {
        self.stream = stream;
        self
    }

    /// Sets [`durable`](Self::durable).
    pub fn with_durable(mut self, durable: impl Into<String>) -> Self {
        self.durable = durable.into();
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size;
        self
    }

    /// Sets [`batch_wait`](Self::batch_wait).
    pub fn with_batch_wait(mut self, wait: Duration) -> Self {
        self.batch_wait = wait;
        self
    }

    /// Sets [`in_flight`](Self::in_flight).
    pub fn with_in_flight(mut self, batches: usize) -> Self {
        self.in_flight = batches;
        self
    }

    /// Sets [`ack_wait`](Self::ack_wait).
    pub fn with_ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// Sets [`max_ack_pending`](Self::max_ack_pending).
    pub fn with_max_ack_pending(mut self, messages: usize) -> Self {
        self.max_ack_pending = messages;
        self
    }

    /// Sets [`sink_timeout`](Self::sink_timeout).
    pub fn with_sink_timeout(mut self, timeout: Duration) -> Self {
        self.sink_timeout = timeout;
        self
    }

    /// Sets [`retry_backoff`](Self::retry_backoff).
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets [`max_backoff`](Self::max_backoff).
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Checks the values: `Err` names the field, the value and the rule.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1, got 0".to_owned());
        }
        if self.in_flight == 0 {
            return Err("in_flight must be at least 1, got 0".to_owned());
        }
        if self.max_ack_pending < self.batch_size {
            return Err(format!(
                "max_ack_pending must be at least batch_size ({}), got {}",
                self.batch_size, self.max_ack_pending
            ));
        }
        if self.ack_wait <= self.sink_timeout {
            return Err(format!(
                "ack_wait ({:?}) must be longer than sink_timeout ({:?}), or JetStream redelivers batches still being written",
                self.ack_wait, self.sink_timeout
            ));
        }
        if self.retry_backoff.is_zero() || self.max_backoff < self.retry_backoff {
            return Err(format!(
                "retry_backoff ({:?}) must be above zero and at most max_backoff ({:?})",
                self.retry_backoff, self.max_backoff
            ));
        }
        Ok(())
    }
}
