//! [`WriterConfig`], [`SpoolConfig`] and [`WriterError`]: the writer's tuning and why it
//! cannot start.

use std::path::PathBuf;
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
/// | [`spool`](Self::spool) | none | a crash-safe file spool in front of the sink ([`SpoolConfig`]) |
/// | [`own_thread`](Self::own_thread) | off | run the writer on a thread of its own instead of the caller's runtime |
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
    /// A local append-only spool between the queue and the sink ([`SpoolConfig`]): records
    /// survive a crash and a sink outage longer than the queue absorbs. Default none.
    pub spool: Option<SpoolConfig>,
    /// Runs the writer's tasks (batching, the spool's appends and syncs, the sink calls and
    /// their encoding) on a thread of its own, with a single-threaded Tokio runtime, instead
    /// of on the runtime that starts the writer. The request path then never waits behind a
    /// writer task that holds one of its workers (a batch of a thousand records is encoded
    /// in one poll), and the operating system shares the CPU between the requests and the
    /// writer by time slices. Sinks whose connections were opened on the caller's runtime
    /// keep working (Tokio drives them from there while that runtime lives). Default off.
    pub own_thread: bool,
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
            spool: None,
            own_thread: false,
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

    /// Sets [`spool`](Self::spool).
    pub fn with_spool(mut self, spool: SpoolConfig) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Sets [`own_thread`](Self::own_thread).
    pub fn with_own_thread(mut self, own: bool) -> Self {
        self.own_thread = own;
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
        } else if let Some(problem) = self.spool.as_ref().and_then(SpoolConfig::problem) {
            problem
        } else {
            return Ok(());
        };
        Err(WriterError::InvalidConfig(problem))
    }

    /// The largest `queue_capacity` (the limit of Tokio's bounded channel).
    pub const MAX_QUEUE_CAPACITY: usize = usize::MAX >> 3;
}

/// A crash-safe local spool for the writer ([`WriterConfig::with_spool`]).
///
/// Every record the writer takes off its queue is appended to a file in
/// [`dir`](Self::dir) at once, and the file is synced to disk every
/// [`sync_interval`](Self::sync_interval); only synced records are handed to the sink, in the
/// order they came, and a file is deleted once the sink has answered for all its records.
/// So:
///
/// - **a crash** (`kill -9`, a panic, a lost machine after the sync) loses at most the records
///   of the last sync interval; the next writer started on the same directory writes the
///   rest (the sinks are idempotent on `id`: records the sink had stored are not doubled);
/// - **a sink outage** longer than the memory queue absorbs fills the spool instead of
///   dropping records, up to [`max_bytes`](Self::max_bytes) on disk; past it, records are
///   counted [`failed`](crate::WriterStats::failed) and
///   [`spool_full`](crate::WriterStats::spool_full).
///
/// One process per directory; a writer over a [`FanOut`](crate::sink::FanOut) keeps a
/// subdirectory per sink. Sinks that are not [durable](crate::ActivitySink::durable)
/// (their state lives in the process) are written without the spool. The records are JSON
/// lines (`*.jsonl`, one file per 8 MiB).
///
/// | knob | default | meaning |
/// |---|---|---|
/// | [`sync_interval`](Self::sync_interval) | 50 ms | how often appended records are synced (and handed on) |
/// | [`max_bytes`](Self::max_bytes) | 1 GiB | disk the spool may use |
/// | [`segment_bytes`](Self::segment_bytes) | 8 MiB | size of each file before the next is started |
///
/// ```
/// use std::time::Duration;
/// use tower_activity::{ActivityRecord, ActivityWriter, RecordKind, SpoolConfig, WriterConfig};
/// use tower_activity::sink::MemorySink;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let dir = std::env::temp_dir().join(format!("spool-doc-{}", std::process::id()));
/// let sink = MemorySink::new();
/// let config = WriterConfig::default().with_spool(SpoolConfig::new(&dir));
/// let writer = ActivityWriter::try_start(sink.clone(), config).unwrap();
/// writer.record(ActivityRecord::new(RecordKind::Request));
/// writer.flush().await; // synced, handed to the sink, and confirmed
/// assert_eq!(sink.len(), 1);
/// writer.shutdown(Duration::from_secs(5)).await;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// The directory of the spool files, created if missing.
    pub dir: PathBuf,
    /// How often the appended records are synced to disk (`fdatasync`) and handed to the
    /// sink. Default 50 ms; not zero.
    pub sync_interval: Duration,
    /// The most bytes the spool files may hold. Default 1 GiB; at least `segment_bytes`.
    pub max_bytes: u64,
    /// The size at which a file is closed and the next one started (whole files are deleted
    /// once written). Default 8 MiB; at least 1.
    pub segment_bytes: u64,
    /// How much of what was appended is also kept in memory (records' approximate size) and
    /// handed to the sink from there once synced, instead of being read back from the file
    /// and parsed: what does not fit (a sink slower than the requests, or down) is read from
    /// the file when its turn comes. The files are the same either way. Default 8 MiB; `0`
    /// reads every record back.
    pub memory_bytes: usize,
}

impl SpoolConfig {
    /// A spool in `dir` with the default knobs.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            sync_interval: Duration::from_millis(50),
            max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
            memory_bytes: 8 << 20,
        }
    }

    /// Sets [`sync_interval`](Self::sync_interval).
    pub fn with_sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets [`segment_bytes`](Self::segment_bytes).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Sets [`memory_bytes`](Self::memory_bytes).
    pub fn with_memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    fn problem(&self) -> Option<&'static str> {
        if self.sync_interval.is_zero() {
            Some("spool.sync_interval must not be zero (every record would wait for a sync)")
        } else if self.segment_bytes == 0 {
            Some("spool.segment_bytes must be at least 1")
        } else if self.max_bytes < self.segment_bytes {
            Some("spool.max_bytes must be at least spool.segment_bytes")
        } else {
            None
        }
    }
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
    /// The spool directory cannot be created or read ([`WriterConfig::spool`]).
    #[error("activity spool {path}: {reason} (check the directory and its permissions)")]
    Spool {
        /// The file or directory.
        path: String,
        /// The system's answer.
        reason: String,
    },
    /// The writer's own thread ([`WriterConfig::own_thread`]) or its runtime could not be
    /// started; the system's answer.
    #[error("the activity writer's thread cannot start: {0}")]
    Thread(String),
}
