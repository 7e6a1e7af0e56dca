//! [`ActivityWriter`]: the bounded queue between the request path and the sink.
//!
//! The request path calls [`ActivityWriter::record`], which never blocks and never awaits: the
//! record goes into a bounded queue, or is dropped **and counted** when the queue is full. A
//! background Tokio task takes records off the queue in batches (by count and by time), hands
//! them to the [`ActivitySink`], retries transient failures with exponential backoff while the
//! queue keeps absorbing traffic, isolates a poison record instead of losing its batch, and
//! drains everything on [`shutdown`](ActivityWriter::shutdown) within a deadline. The shape
//! follows `tracing-appender`'s non-blocking writer and OpenTelemetry's batch span processor.
//!
//! ```
//! use std::time::Duration;
//! use tower_activity::{ActivityRecord, ActivityWriter, Kind, MemorySink, WriterConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sink = MemorySink::new();
//! let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(500));
//!
//! assert!(writer.record(ActivityRecord::new(Kind::Request)));
//! writer.flush().await; // everything recorded so far is in the sink
//! assert_eq!(sink.len(), 1);
//!
//! let stats = writer.shutdown(Duration::from_secs(5)).await;
//! assert_eq!((stats.enqueued, stats.written, stats.failed), (1, 1, 0));
//! assert!(!writer.record(ActivityRecord::new(Kind::Request))); // closed: dropped and counted
//! # }
//! ```
//!
//! Every record given to [`record`](ActivityWriter::record) ends in exactly one counter of
//! [`WriterStats`] (see its docs): nothing is lost silently.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};

use crate::record::ActivityRecord;
use crate::sink::{ActivitySink, SinkError};

/// Writer tuning. Build it from [`WriterConfig::default`] with the `with_*` methods.
///
/// | knob | default | meaning |
/// |---|---|---|
/// | [`queue_capacity`](Self::queue_capacity) | 65,536 | records waiting for the sink before new ones are dropped |
/// | [`batch_size`](Self::batch_size) | 1,000 | records per sink call at most |
/// | [`batch_interval`](Self::batch_interval) | 100 ms | how long a partial batch waits for more records |
/// | [`retry_backoff`](Self::retry_backoff) | 50 ms | first wait after a transient failure, doubled each retry |
/// | [`max_backoff`](Self::max_backoff) | 5 s | the longest wait between retries |
///
/// [`ActivityWriter::try_start`] checks the values (see [`WriterConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterConfig {
    /// Records the queue holds before new ones are dropped and counted as
    /// [`dropped_queue_full`](WriterStats::dropped_queue_full). Default 65,536; at least 1.
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
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 65_536,
            batch_size: 1_000,
            batch_interval: Duration::from_millis(100),
            retry_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
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

    /// Checks the values: `queue_capacity` between 1 and [`MAX_QUEUE_CAPACITY`](Self::MAX_QUEUE_CAPACITY),
    /// `batch_size` at least 1, `retry_backoff` not zero, `max_backoff` at least `retry_backoff`.
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

/// A snapshot of the writer's counters, from [`ActivityWriter::stats`] or
/// [`ActivityWriter::shutdown`].
///
/// Every record given to [`ActivityWriter::record`] ends in exactly one place:
/// `dropped_queue_full` or `dropped_closed` (refused at once), or `enqueued` and then, once the
/// sink has answered, `written` or `failed`; until then it is part of `queue_depth`. So
/// `enqueued == written + failed + queue_depth`, and after a shutdown `queue_depth` is 0. The
/// counters are read one by one while other threads record, so a snapshot taken during
/// concurrent [`record`](ActivityWriter::record) calls may be off by the calls in flight.
///
/// All counts are totals since the writer started (Prometheus counters), except `queue_depth`
/// and `last_batch_micros` (gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records the sink confirmed.
    pub written: u64,
    /// Records refused because the queue was full (raise
    /// [`WriterConfig::queue_capacity`] or speed up the sink).
    pub dropped_queue_full: u64,
    /// Records refused because the writer was shut down (or its task is gone).
    pub dropped_closed: u64,
    /// Accepted records that were not written: rejected on their own by the sink
    /// ([`SinkError::Permanent`]), or still unwritten when the shutdown deadline passed.
    pub failed: u64,
    /// Sink calls repeated after a [`SinkError::Transient`] failure.
    pub retried: u64,
    /// Batches handed to the sink (a batch retried or split counts once).
    pub batches: u64,
    /// Records accepted but not yet written or failed: queued, or in the batch being written.
    pub queue_depth: u64,
    /// How long the last batch took from its first sink call to its last answer (retries and
    /// splits included), in microseconds.
    pub last_batch_micros: u64,
    /// The sum of that time over every batch, in microseconds (a Prometheus counter; divide by
    /// `batches` for the mean).
    pub batch_micros_total: u64,
}

/// A message on the queue. Flush markers travel the same FIFO as records, so a flush answers
/// after every record sent before it.
// Records are nearly every message: boxing them would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(ActivityRecord),
    Flush(oneshot::Sender<()>),
}

/// Counters shared by the handles and the task.
#[derive(Default)]
struct Counters {
    enqueued: AtomicU64,
    written: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_closed: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    batches: AtomicU64,
    last_batch_micros: AtomicU64,
    batch_micros_total: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WriterStats {
        // Resolved records are read before `enqueued`, which is incremented first, so that
        // `queue_depth` never goes negative.
        let written = self.written.load(Relaxed);
        let failed = self.failed.load(Relaxed);
        let enqueued = self.enqueued.load(Relaxed);
        WriterStats {
            enqueued,
            written,
            dropped_queue_full: self.dropped_queue_full.load(Relaxed),
            dropped_closed: self.dropped_closed.load(Relaxed),
            failed,
            retried: self.retried.load(Relaxed),
            batches: self.batches.load(Relaxed),
            queue_depth: enqueued.saturating_sub(written + failed),
            last_batch_micros: self.last_batch_micros.load(Relaxed),
            batch_micros_total: self.batch_micros_total.load(Relaxed),
        }
    }
}

/// At most one warning per second for a kind of drop, saying how many records were dropped
/// since the previous one.
struct DropWarning {
    /// Drops not reported yet.
    pending: AtomicU64,
    /// When the next warning may be logged, in microseconds since [`Shared::epoch`].
    next_at: AtomicU64,
}

const WARN_EVERY: Duration = Duration::from_secs(1);

impl DropWarning {
    fn new() -> Self {
        DropWarning {
            pending: AtomicU64::new(0),
            next_at: AtomicU64::new(0),
        }
    }

    /// Counts one drop; returns how many to report now, if a warning is due.
    fn dropped(&self, epoch: Instant) -> Option<u64> {
        self.pending.fetch_add(1, Relaxed);
        self.due(epoch)
    }

    /// Returns how many drops to report now, if some are pending and a warning is due.
    fn due(&self, epoch: Instant) -> Option<u64> {
        if self.pending.load(Relaxed) == 0 {
            return None;
        }
        let now = micros(epoch.elapsed());
        let next = self.next_at.load(Relaxed);
        if now < next {
            return None;
        }
        // One caller wins the window; the others leave their drops for the next warning.
        self.next_at
            .compare_exchange(next, now + micros(WARN_EVERY), Relaxed, Relaxed)
            .ok()?;
        Some(self.pending.swap(0, Relaxed)).filter(|&n| n > 0)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// State shared by the handles and the task.
struct Shared {
    counters: Counters,
    /// Set by `shutdown` (and when the task ends): `record` refuses at once.
    closed: AtomicBool,
    /// The shutdown deadline, once requested.
    stop: watch::Sender<Option<Instant>>,
    /// The final stats, once the task has ended.
    done: watch::Sender<Option<WriterStats>>,
    queue_full: DropWarning,
    after_close: DropWarning,
    epoch: Instant,
    queue_capacity: usize,
    /// How many queued records complete the open batch: `record` wakes the collector when
    /// the queue holds that many.
    wake_at: AtomicUsize,
    /// Wakes a collector that is waiting for its open batch to become due: sent when the
    /// queue holds a full batch, or a flush marker. Records do not wake it one by one.
    wake: Notify,
}

impl Shared {
    fn warn_queue_full(&self, dropped: u64) {
        tracing::warn!(
            dropped,
            queue_capacity = self.queue_capacity,
            "activity writer queue full: dropped {dropped} record(s); \
             raise WriterConfig::queue_capacity or speed up the sink"
        );
    }

    fn warn_after_close(dropped: u64) {
        tracing::warn!(
            dropped,
            "activity writer is shut down: dropped {dropped} record(s) recorded after shutdown"
        );
    }

    /// Logs the drops that no warning has reported yet, if a warning is due.
    fn report_drops(&self) {
        if let Some(n) = self.queue_full.due(self.epoch) {
            self.warn_queue_full(n);
        }
        if let Some(n) = self.after_close.due(self.epoch) {
            Self::warn_after_close(n);
        }
    }
}

/// A cloneable handle to the background task that writes records to an [`ActivitySink`].
///
/// Every clone feeds the same queue and reads the same counters. When the last handle is
/// dropped, the task writes what is queued (retrying transient failures, with no deadline since
/// nobody waits for it) and exits; call [`shutdown`](Self::shutdown) for a bounded drain.
///
/// [`record`](Self::record) never blocks: a bounded queue takes the record or drops it and
/// counts the drop. The task writes batches of up to [`WriterConfig::batch_size`] records,
/// or fewer once [`WriterConfig::batch_interval`] has passed since the first record of the
/// batch; it retries [`SinkError::Transient`] failures with exponential backoff and splits a
/// batch rejected with [`SinkError::Permanent`] to write every record but the bad ones.
///
/// ```
/// use std::time::Duration;
/// use tower_activity::{ActivityRecord, ActivityWriter, Kind, MemorySink, WriterConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sink = MemorySink::new();
/// let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
/// writer.record(ActivityRecord::new(Kind::Request));
///
/// // At exit (after the server stopped taking requests):
/// let stats = writer.shutdown(Duration::from_secs(10)).await;
/// assert_eq!(stats.written, 1);
/// assert_eq!(sink.len(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct ActivityWriter {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl fmt::Debug for ActivityWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityWriter")
            .field("closed", &self.is_closed())
            .field("stats", &self.stats())
            .finish()
    }
}

impl ActivityWriter {
    /// Starts the writer's task on the current Tokio runtime and returns its handle.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime ("ActivityWriter must be started from within a Tokio runtime"),
    /// or when `config` is invalid (see [`WriterConfig::validate`]). Use
    /// [`try_start`](Self::try_start) to get a [`WriterError`] instead.
    #[track_caller]
    pub fn start(sink: impl ActivitySink, config: WriterConfig) -> Self {
        match Self::try_start(sink, config) {
            Ok(writer) => writer,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`start`](Self::start), returning an error instead of panicking when there is no
    /// current Tokio runtime or `config` is invalid.
    pub fn try_start(sink: impl ActivitySink, config: WriterConfig) -> Result<Self, WriterError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WriterError::NoRuntime)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop: watch::Sender::new(None),
            done: watch::Sender::new(None),
            queue_full: DropWarning::new(),
            after_close: DropWarning::new(),
            epoch: Instant::now(),
            queue_capacity: config.queue_capacity,
            wake_at: AtomicUsize::new(config.batch_size),
            wake: Notify::new(),
        });
        let task = Task {
            sink,
            rx,
            rx_closed: false,
            stop: Stop {
                rx: shared.stop.subscribe(),
                deadline: None,
            },
            shared: Arc::clone(&shared),
            abandoned: 0,
            config,
        };
        runtime.spawn(task.run());
        Ok(ActivityWriter { tx, shared })
    }

    /// Queues a record for the sink; never blocks and never awaits.
    ///
    /// Returns `true` when the record was queued. Returns `false` when it was dropped: the queue
    /// was full ([`WriterStats::dropped_queue_full`]) or the writer is shut down
    /// ([`WriterStats::dropped_closed`]). Drops are logged with at most one warning per second
    /// and per reason, saying how many records were dropped.
    pub fn record(&self, record: ActivityRecord) -> bool {
        let c = &self.shared.counters;
        if self.shared.closed.load(Relaxed) {
            self.dropped_closed();
            return false;
        }
        // Counted before the send so that the task never writes a record not yet enqueued.
        c.enqueued.fetch_add(1, Relaxed);
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => {
                let queued = self.tx.max_capacity() - self.tx.capacity();
                if queued >= self.shared.wake_at.load(SeqCst) {
                    self.shared.wake.notify_one();
                }
                true
            }
            Err(e) => {
                c.enqueued.fetch_sub(1, Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => {
                        c.dropped_queue_full.fetch_add(1, Relaxed);
                        if let Some(n) = self.shared.queue_full.dropped(self.shared.epoch) {
                            self.shared.warn_queue_full(n);
                        }
                    }
                    mpsc::error::TrySendError::Closed(_) => self.dropped_closed(),
                }
                false
            }
        }
    }

    fn dropped_closed(&self) {
        self.shared.counters.dropped_closed.fetch_add(1, Relaxed);
        if let Some(n) = self.shared.after_close.dropped(self.shared.epoch) {
            Shared::warn_after_close(n);
        }
    }

    /// The current counters.
    pub fn stats(&self) -> WriterStats {
        self.shared.counters.snapshot()
    }

    /// Whether the writer refuses new records ([`shutdown`](Self::shutdown) was called, or the
    /// task is gone).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Relaxed) || self.tx.is_closed()
    }

    /// Waits until every record queued before the call has been written or failed.
    ///
    /// The flush marker travels the queue behind those records; when the queue is full, sending
    /// it waits for room. A partial batch is written at once instead of waiting for
    /// [`WriterConfig::batch_interval`]. After [`shutdown`](Self::shutdown), waits for the drain
    /// to end.
    pub async fn flush(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.shared.closed.load(Relaxed) || self.tx.send(Msg::Flush(done_tx)).await.is_err() {
            self.finished().await;
            return;
        }
        self.shared.wake.notify_one();
        // An error means the task dropped the marker while ending: nothing is left to wait for.
        let _ = done_rx.await;
    }

    /// Stops accepting records, writes everything queued, and returns the final counters.
    ///
    /// From the call on, [`record`](Self::record) refuses new records
    /// ([`WriterStats::dropped_closed`]). The queue is drained in batches; transient failures
    /// are retried until `deadline` (from now) passes. Records still unwritten then — including
    /// a sink call still in flight, which is cancelled — are counted as
    /// [`failed`](WriterStats::failed) and reported in one warning. Returns by the deadline.
    ///
    /// Idempotent: later calls (and concurrent ones) wait for the same drain and return the same
    /// final stats; the deadline of the first call wins. The returned stats are those at the end
    /// of the drain; [`stats`](Self::stats) keeps counting later drops.
    pub async fn shutdown(&self, deadline: Duration) -> WriterStats {
        self.shared.closed.store(true, Relaxed);
        // `Duration::MAX` means "no deadline"; a year is as good and does not overflow.
        let now = Instant::now();
        let at = now
            .checked_add(deadline)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        self.shared.stop.send_if_modified(|stop| {
            let first = stop.is_none();
            if first {
                *stop = Some(at);
            }
            first
        });
        self.finished().await
    }

    /// Waits until the task has ended; returns its final stats.
    async fn finished(&self) -> WriterStats {
        let mut done = self.shared.done.subscribe();
        match done.wait_for(Option::is_some).await {
            Ok(stats) => stats.unwrap_or_else(|| self.stats()),
            // The sender lives in `shared`, which this handle holds.
            Err(_) => self.stats(),
        }
    }
}

/// The shutdown signal as the task sees it.
struct Stop {
    rx: watch::Receiver<Option<Instant>>,
    deadline: Option<Instant>,
}

impl Stop {
    /// Resolves the first time shutdown is requested; pending after that.
    async fn requested(&mut self) {
        if self.deadline.is_none() {
            while self.rx.changed().await.is_ok() {
                if let Some(at) = *self.rx.borrow_and_update() {
                    self.deadline = Some(at);
                    return;
                }
            }
        }
        std::future::pending().await
    }

    /// Whether the shutdown deadline has passed.
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }

    /// Runs `fut` to completion, or until the shutdown deadline (requested before or during the
    /// run) passes: then `None`, and `fut` is dropped.
    async fn run<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        if self.deadline.is_none() {
            match race(fut.as_mut(), self.requested()).await {
                Either::Left(out) => return Some(out),
                Either::Right(()) => {}
            }
        }
        let at = self.deadline?;
        timeout_at(at, fut).await.ok()
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures; resolves with the first to finish (`a` first when both are ready).
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// Runs a sink call, turning a panic into [`SinkError::Permanent`] so that one bad record cannot
/// kill the writer (and every later record with it).
async fn catch_panic<F>(fut: F) -> Result<(), SinkError>
where
    F: Future<Output = Result<(), SinkError>>,
{
    let mut fut = pin!(fut);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(SinkError::permanent("the sink panicked"))),
        },
    )
    .await
}

/// What the collector saw.
enum Next {
    /// A batch is ready (full, due, or a flush marker asks for it); more may follow.
    Batch,
    /// The queue is closed and empty: write the batch and end.
    End,
}

/// The background task.
struct Task<S> {
    sink: S,
    rx: mpsc::Receiver<Msg>,
    rx_closed: bool,
    stop: Stop,
    shared: Arc<Shared>,
    /// Records counted failed because the shutdown deadline passed.
    abandoned: u64,
    config: WriterConfig,
}

/// Publishes the final stats when the task ends, even by a panic or a runtime shutdown, so
/// that `shutdown` and `flush` never wait forever.
struct Finish(Arc<Shared>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.closed.store(true, Relaxed);
        self.0.report_drops();
        let stats = self.0.counters.snapshot();
        self.0.done.send_if_modified(|done| {
            let first = done.is_none();
            if first {
                *done = Some(stats);
            }
            first
        });
    }
}

impl<S: ActivitySink> Task<S> {
    async fn run(mut self) {
        let _finish = Finish(Arc::clone(&self.shared));
        let mut batch = Vec::with_capacity(self.config.batch_size.min(4_096));
        let mut flushes = Vec::new();
        loop {
            let next = self.collect(&mut batch, &mut flushes).await;
            if !batch.is_empty() {
                self.write_batch(&batch).await;
                batch.clear();
            }
            for flush in flushes.drain(..) {
                let _ = flush.send(());
            }
            self.shared.report_drops();
            if let Next::End = next {
                break;
            }
        }
        if self.abandoned > 0 {
            tracing::warn!(
                failed = self.abandoned,
                "activity writer shutdown deadline passed: {} record(s) not written, counted as failed",
                self.abandoned
            );
        }
    }

    /// Fills `batch` until it is full, its interval since the first record has passed, a flush
    /// marker arrives, or the queue ends. Once shutdown is requested, takes what is queued
    /// without waiting.
    async fn collect(
        &mut self,
        batch: &mut Vec<ActivityRecord>,
        flushes: &mut Vec<oneshot::Sender<()>>,
    ) -> Next {
        let mut due: Option<Instant> = None;
        loop {
            if batch.len() >= self.config.batch_size {
                return Next::Batch;
            }
            let msg = if let Some(deadline) = self.stop.deadline {
                if !self.rx_closed {
                    // New sends fail from now on; what is queued stays readable.
                    self.rx.close();
                    self.rx_closed = true;
                }
                // A closed queue never waits for new messages, so the deadline only guards
                // against a sender stuck mid-send.
                timeout_at(deadline, self.rx.recv())
                    .await
                    .unwrap_or_default()
            } else if let Some(at) = due {
                // A batch is open. Rather than waking for every record (a task wake-up per
                // request, on the CPUs the requests need), sleep until the batch is due, or
                // until the queue holds a full batch or a flush marker (`wake`), then take
                // what is queued without waiting.
                match self.rx.try_recv() {
                    Ok(msg) => Some(msg),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if Instant::now() >= at {
                            return Next::Batch;
                        }
                        let needed = self.config.batch_size - batch.len();
                        // SeqCst: a wake missed by a race would only delay the batch to its due time.
                        self.shared.wake_at.store(needed, SeqCst);
                        if self.rx.len() >= needed {
                            continue;
                        }
                        let woken = race(sleep_until(at), self.shared.wake.notified());
                        // Due, woken, or shutdown requested (then drained from the next turn
                        // on): look at the queue again.
                        let _ = race(woken, self.stop.requested()).await;
                        continue;
                    }
                }
            } else {
                match race(self.rx.recv(), self.stop.requested()).await {
                    Either::Left(msg) => msg,
                    // Shutdown requested: drain from the next turn on.
                    Either::Right(()) => continue,
                }
            };
            match msg {
                Some(Msg::Record(record)) => {
                    if batch.is_empty() {
                        due = Some(Instant::now() + self.config.batch_interval);
                    }
                    batch.push(record);
                }
                Some(Msg::Flush(flush)) => {
                    flushes.push(flush);
                    return Next::Batch;
                }
                None => return Next::End,
            }
        }
    }

    /// Writes one batch taken from the queue, and times it.
    async fn write_batch(&mut self, batch: &[ActivityRecord]) {
        let c = &self.shared.counters;
        if self.stop.expired() {
            self.abandon(batch.len());
            return;
        }
        c.batches.fetch_add(1, Relaxed);
        let started = Instant::now();
        self.write_or_split(batch).await;
        let took = micros(started.elapsed());
        let c = &self.shared.counters;
        c.last_batch_micros.store(took, Relaxed);
        c.batch_micros_total.fetch_add(took, Relaxed);
    }

    /// Writes `batch`, retrying transient failures and bisecting on permanent ones, until every
    /// record is written or failed.
    fn write_or_split<'a>(
        &'a mut self,
        batch: &'a [ActivityRecord],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut backoff = self.config.retry_backoff;
            loop {
                if self.stop.expired() {
                    return self.abandon(batch.len());
                }
                let Some(result) = self.stop.run(catch_panic(self.sink.write(batch))).await else {
                    return self.abandon(batch.len());
                };
                let c = &self.shared.counters;
                match result {
                    Ok(()) => {
                        c.written.fetch_add(batch.len() as u64, Relaxed);
                        return;
                    }
                    Err(SinkError::Transient(error)) => {
                        tracing::warn!(
                            %error,
                            records = batch.len(),
                            retry_in = ?backoff,
                            "activity sink failed transiently; retrying the batch"
                        );
                        if self.stop.run(sleep(backoff)).await.is_none() {
                            return self.abandon(batch.len());
                        }
                        self.shared.counters.retried.fetch_add(1, Relaxed);
                        backoff = (backoff * 2).min(self.config.max_backoff);
                    }
                    Err(SinkError::Permanent(error)) => {
                        if let [record] = batch {
                            c.failed.fetch_add(1, Relaxed);
                            tracing::error!(
                                id = %record.id,
                                %error,
                                "activity sink rejected a record permanently; it is not written"
                            );
                            return;
                        }
                        tracing::debug!(
                            %error,
                            records = batch.len(),
                            "activity sink rejected a batch permanently; splitting it"
                        );
                        let (left, right) = batch.split_at(batch.len() / 2);
                        self.write_or_split(left).await;
                        self.write_or_split(right).await;
                        return;
                    }
                }
            }
        })
    }

    /// Counts records given up on at the shutdown deadline.
    fn abandon(&mut self, records: usize) {
        self.abandoned += records as u64;
        self.shared
            .counters
            .failed
            .fetch_add(records as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = WriterConfig::default();
        assert_eq!(c.queue_capacity, 65_536);
        assert_eq!(c.batch_size, 1_000);
        assert_eq!(c.batch_interval, Duration::from_millis(100));
        assert_eq!(c.retry_backoff, Duration::from_millis(50));
        assert_eq!(c.max_backoff, Duration::from_secs(5));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validation_names_the_bad_knob() {
        let bad = [
            (
                WriterConfig::default().with_queue_capacity(0),
                "queue_capacity",
            ),
            (
                WriterConfig::default().with_queue_capacity(WriterConfig::MAX_QUEUE_CAPACITY + 1),
                "queue_capacity",
            ),
            (WriterConfig::default().with_batch_size(0), "batch_size"),
            (
                WriterConfig::default().with_retry_backoff(Duration::ZERO),
                "retry_backoff",
            ),
            (
                WriterConfig::default().with_max_backoff(Duration::from_millis(1)),
                "max_backoff",
            ),
        ];
        for (config, knob) in bad {
            match config.validate() {
                Err(WriterError::InvalidConfig(msg)) => assert!(msg.starts_with(knob), "{msg}"),
                other => panic!("{knob}: {other:?}"),
            }
        }
        let edge = WriterConfig::default()
            .with_queue_capacity(1)
            .with_batch_size(1)
            .with_max_backoff(Duration::from_millis(50));
        assert_eq!(edge.validate(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn drop_warnings_come_once_per_second_with_the_count() {
        let w = DropWarning::new();
        let epoch = Instant::now();
        assert_eq!(w.dropped(epoch), Some(1), "the first drop warns at once");
        for _ in 0..9 {
            assert_eq!(w.dropped(epoch), None, "the rest of the burst is quiet");
        }
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(w.due(epoch), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            w.due(epoch),
            Some(9),
            "the next warning counts the quiet ones"
        );
        tokio::time::advance(WARN_EVERY).await;
        assert_eq!(w.due(epoch), None, "nothing pending, nothing to say");
    }

    #[tokio::test]
    async fn race_prefers_the_first_ready_future() {
        match race(async { 1 }, async { 2 }).await {
            Either::Left(1) => {}
            _ => panic!("left was ready first"),
        }
        match race(std::future::pending::<()>(), async { 2 }).await {
            Either::Right(2) => {}
            _ => panic!("only right was ready"),
        }
    }
}
