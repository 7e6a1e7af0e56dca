//! [`WriterConfig`] and [`WriterError`]: the writer's tuning and why it cannot start.

use std::time::Duration;

/// Writer tuning. Build it from [`WriterConfig::default`] with the `with_*` methods.
///
/// | knob | default | meaning |
/// |---|---|---|
/// | [`queue_capacity`](Self::queue_capacity) | 65,536 | records waiting for the sink before new ones are dropped |
/// | [`batch_size`](Self::batch_size) | 1,000 | records per sink call at most |
/// | [`batch_interval`](Self::batch_interval) | 100 ms | how long a partial batch waits for more records |
/// | [`retry_backoff`](Self::retry_backoff) | 50 ms | first wait after a transient failure, doubled each retry |
/// | [`max_backoff`](Self::max_backoff) | 5 s | the longest wait between retries |
/// | [`sink_timeout`](Self::sink_timeout) | 30 s | how long a sink call may take before it is abandoned and retried |
/// | [`queue_bytes`](Self::queue_bytes) | 64 MiB | bytes of records waiting for the sink before new ones are dropped |
///
/// [`ActivityWriter::try_start`](crate::ActivityWriter::try_start) checks the values (see [`WriterConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterConfig {
    /// Records the queue holds before new ones are dropped and counted as
    /// [`dropped_queue_full`](crate::WriterStats::dropped_queue_full). Default 65,536; at least 1.
    pub queue_capacity: usize,
    /// Records per sink call at most. Default 1,000; at least 1.
    pub batch_size: usize,
    /// How long a partial batch waits, from its first record, for more records before it is
    /// written. Default 100 ms.
    pub batch_interval: Duration,
    /// The wait before the first retry of a batch that failed transiently; each further retry
    /// waits twice as long, up to [`max_backoff`](Self::max_backoff). Default 50 ms; not zero.
    pub retry_backoff: Duration,
    /// The longest wait between two retries. Default 5 s; at least `retry_backoff`.
    pub max_backoff: Duration,
    /// How long one sink call may take. A call that has not answered by then is abandoned
    /// (its future dropped), counted in [`sink_timeouts`](crate::WriterStats::sink_timeouts)
    /// and retried like a [`SinkError::Transient`](crate::SinkError::Transient) failure: a hung
    /// database connection must not stop the writer for good. Sinks are idempotent on `id`,
    /// so a call that did land before it was abandoned stores nothing twice. Default 30 s;
    /// not zero.
    pub sink_timeout: Duration,
    /// The most bytes of records ([`ActivityRecord`](crate::ActivityRecord)'s approximate
    /// size: its struct, strings, maps and metadata) the queue holds, besides
    /// [`queue_capacity`](Self::queue_capacity) records: past either, new records are dropped
    /// and counted as [`dropped_queue_full`](crate::WriterStats::dropped_queue_full). A record
    /// that arrives when the queue is empty is always taken, whatever its size. Records in the
    /// batch being written count until the sink has answered. Default 64 MiB; at least 1.
    pub queue_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 65_536,
            batch_size: 1_000,
            batch_interval: Duration::from_millis(100),
            retry_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            sink_timeout: Duration::from_secs(30),
            queue_bytes: 64 << 20,
        }
    }
}

impl WriterConfig {
    /// Sets [`queue_capacity`](Self::queue_capacity).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size;
        self
    }

    /// Sets [`batch_interval`](Self::batch_interval).
    pub fn with_batch_interval(mut self, interval: Duration) -> Self {
        self.batch_interval = interval;
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

    /// Sets [`sink_timeout`](Self::sink_timeout).
    pub fn with_sink_timeout(mut self, timeout: Duration) -> Self {
        self.sink_timeout = timeout;
        self
    }

    /// Sets [`queue_bytes`](Self::queue_bytes).
    pub fn with_queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Checks the values: `queue_capacity` between 1 and [`MAX_QUEUE_CAPACITY`](Self::MAX_QUEUE_CAPACITY),
    /// `batch_size` at least 1, `retry_backoff` not zero, `max_backoff` at least `retry_backoff`,
    /// `sink_timeout` not zero, `queue_bytes` at least 1.
    pub fn validate(&self) -> Result<(), WriterError> {
        let problem = if self.queue_capacity == 0 {
            "queue_capacity must be at least 1"
        } else if self.queue_capacity > Self::MAX_QUEUE_CAPACITY {
            "queue_capacity must be at most WriterConfig::MAX_QUEUE_CAPACITY"
        } else if self.batch_size == 0 {
            "batch_size must be at least 1"
        } else if self.retry_backoff.is_zero() {
            "retry_backoff must not be zero (a failing sink would be retried in a busy loop)"
        } else if self.max_backoff < self.retry_backoff {
            "max_backoff must be at least retry_backoff"
        } else if self.sink_timeout.is_zero() {
            "sink_timeout must not be zero (every sink call would be abandoned)"
        } else if self.queue_bytes == 0 {
            "queue_bytes must be at least 1"
        } else {
            return Ok(());
        };
        Err(WriterError::InvalidConfig(problem))
    }

    /// The largest `queue_capacity` (the limit of Tokio's bounded channel).
    pub const MAX_QUEUE_CAPACITY: usize = usize::MAX >> 3;
}

/// Why a writer could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriterError {
    /// There is no Tokio runtime on this thread to run the writer's task.
    #[error(
        "ActivityWriter must be started from within a Tokio runtime \
         (call it inside #[tokio::main] or Runtime::enter)"
    )]
    NoRuntime,
    /// A [`WriterConfig`] value is out of range; the message names the knob.
    #[error("invalid WriterConfig: {0}")]
    InvalidConfig(&'static str),
}
