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
//! use tower_activity::{ActivityRecord, ActivityWriter, RecordKind, WriterConfig};
//! use tower_activity::sink::MemorySink;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sink = MemorySink::new();
//! let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(500));
//!
//! assert!(writer.record(ActivityRecord::new(RecordKind::Request)));
//! writer.flush().await; // everything recorded so far is in the sink
//! assert_eq!(sink.len(), 1);
//!
//! let stats = writer.shutdown(Duration::from_secs(5)).await;
//! assert_eq!((stats.enqueued, stats.written, stats.failed), (1, 1, 0));
//! assert!(!writer.record(ActivityRecord::new(RecordKind::Request))); // closed: dropped and counted
//! # }
//! ```
//!
//! Every record given to [`record`](ActivityWriter::record) ends in exactly one counter of
//! [`WriterStats`] (see its docs): nothing is lost silently.
//!
//! Several sinks ([`FanOut`](crate::sink::FanOut)) each get a lane of their own — queue, task, batches, retries and
//! counters — like OpenTelemetry's one batch processor per exporter: a slow or failing sink
//! fills only its own queue, and never delays or loses another sink's records. Its
//! [observers](crate::sink::RecordObserver) read each record on the caller's thread before the
//! lanes get it, with counters of their own.

mod config;
mod guard;
mod handle;
mod line;
mod observe;
mod spool;
mod task;

pub use self::config::{SpoolConfig, WriterConfig, WriterError};
pub use self::guard::WriterGuard;
pub use self::handle::{ActivityWriter, SinkStats};
use self::observe::Observed;
use self::spool::Spooler;
use self::task::Task;
use self::task::{Either, race};

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use crate::record::ActivityRecord;
use crate::sink::{ActivitySink, SinkError};

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
///
/// A writer over a [`FanOut`](crate::sink::FanOut) keeps these counters for each sink
/// ([`ActivityWriter::sink_stats`]); [`ActivityWriter::stats`] adds them up, so there a record
/// given to two sinks counts twice (once in each), the invariant above still holds, and
/// `last_batch_micros` is the longest of the sinks' last batches.
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
    /// Sink calls repeated after a [`SinkError::Transient`] failure or a timeout.
    pub retried: u64,
    /// Sink calls abandoned after [`WriterConfig::sink_timeout`] (each then retried).
    pub sink_timeouts: u64,
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
    /// Records found in the [spool](crate::SpoolConfig) at start (left by an earlier
    /// process that stopped before the sink confirmed them) and written again; they count in
    /// `enqueued` too.
    pub replayed: u64,
    /// Records the spool could not take because it was at
    /// [`max_bytes`](crate::SpoolConfig::max_bytes); they count in `failed` too.
    pub spool_full: u64,
    /// Bytes in the spool's files now (a gauge; 0 without a spool).
    pub spool_bytes: u64,
    /// Records synced to the spool's disk so far: from here on a crash does not lose them.
    pub spooled: u64,
}

/// A message on the queue. Flush markers travel the same FIFO as records, so a flush answers
/// after every record sent before it.
enum Msg {
    /// A record and its [`ActivityRecord::approx_size`], counted once when it is queued (the
    /// task gives the same figure back when the record is written). Boxed: the layer makes
    /// each record in a box of its own, which reaches the queue without a copy (a 560-byte
    /// record was copied at every step of the hand-over, and the queue's blocks were 18 KB).
    Record(Box<ActivityRecord>, usize),
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
    sink_timeouts: AtomicU64,
    batches: AtomicU64,
    last_batch_micros: AtomicU64,
    batch_micros_total: AtomicU64,
    replayed: AtomicU64,
    spool_full: AtomicU64,
    spool_bytes: AtomicU64,
    spooled: AtomicU64,
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
            sink_timeouts: self.sink_timeouts.load(Relaxed),
            batches: self.batches.load(Relaxed),
            queue_depth: enqueued.saturating_sub(written + failed),
            last_batch_micros: self.last_batch_micros.load(Relaxed),
            batch_micros_total: self.batch_micros_total.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            spool_full: self.spool_full.load(Relaxed),
            spool_bytes: self.spool_bytes.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
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
    /// The sink's name in a [`FanOut`](crate::sink::FanOut) (`"default"` for a single sink), for warnings.
    name: Arc<str>,
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
    /// [`WriterConfig::queue_bytes`], and the approximate bytes of the records accepted and
    /// not yet written or failed.
    queue_bytes: usize,
    queued_bytes: AtomicUsize,
    /// How many queued records complete the open batch: `record` wakes the collector when
    /// the queue holds that many.
    wake_at: AtomicUsize,
    /// Wakes a collector that is waiting for its open batch to become due: sent when the
    /// queue holds a full batch, or a flush marker. Records do not wake it one by one.
    wake: Notify,
    /// Wakes a spooler that waits for its next sync with records appended: sent when its
    /// queue is half full or holds a flush marker. Records do not wake it one by one.
    spool_wake: Notify,
    /// Records the sink has answered for (written or failed), in queue order: the spool
    /// deletes its files up to here.
    resolved: AtomicU64,
    /// Sent after each batch, for the spool.
    batch_done: Notify,
    /// Whether a spooler is running (set when it starts, cleared when it has ended).
    spooling: watch::Sender<bool>,
}

impl Shared {
    fn warn_queue_full(&self, dropped: u64) {
        tracing::warn!(
            sink = %self.name,
            dropped,
            queue_capacity = self.queue_capacity,
            "activity writer queue full: dropped {dropped} record(s); \
             raise WriterConfig::queue_capacity (or queue_bytes) or speed up the sink"
        );
    }

    fn warn_after_close(&self, dropped: u64) {
        tracing::warn!(
            sink = %self.name,
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
            self.warn_after_close(n);
        }
    }
}

/// A lane's task (its collector and sink calls, or its spooler), not yet running.
type LaneTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `tasks` where [`WriterConfig::own_thread`] says: on `runtime`, or on a thread of
/// their own with a single-threaded runtime, which ends when they all have.
fn run_lanes(
    tasks: Vec<LaneTask>,
    runtime: Option<tokio::runtime::Handle>,
) -> Result<(), WriterError> {
    if let Some(runtime) = runtime {
        for task in tasks {
            runtime.spawn(task);
        }
        return Ok(());
    }
    let own = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("activity-writer")
        .build()
        .map_err(|e| WriterError::Thread(e.to_string()))?;
    std::thread::Builder::new()
        .name("activity-writer".to_owned())
        .spawn(move || {
            own.block_on(async move {
                let mut running = tokio::task::JoinSet::new();
                for task in tasks {
                    running.spawn(task);
                }
                // A task that panicked has published its stats (`Finish`): wait for the rest.
                while running.join_next().await.is_some() {}
            });
        })
        .map_err(|e| WriterError::Thread(e.to_string()))?;
    Ok(())
}

/// One sink's bounded queue and the handle to the task that writes it: a writer over one sink
/// is one lane; a writer over a [`FanOut`](crate::sink::FanOut) has a lane per sink, so that each sink gets every
/// record through its own queue, batches, retries and counters. [`ActivityWriter`] documents
/// what each method does for the lanes together.
#[derive(Clone)]
struct Lane {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    /// Whether `tx` feeds a spooler (else the sink task).
    spooled: bool,
}

impl Lane {
    /// Makes the lane for `sink`, behind a spool if `config` has one and the sink is
    /// [durable](ActivitySink::durable) (in its own subdirectory `name` when `subdir`); its
    /// task(s) go into `tasks`, for the caller to run.
    fn start(
        name: Arc<str>,
        sink: Box<dyn ActivitySink>,
        config: &WriterConfig,
        subdir: bool,
        tasks: &mut Vec<LaneTask>,
    ) -> Result<Lane, WriterError> {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let spool = config.spool.as_ref().filter(|_| sink.durable());
        let shared = Arc::new(Shared {
            name,
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop: watch::Sender::new(None),
            done: watch::Sender::new(None),
            queue_full: DropWarning::new(),
            after_close: DropWarning::new(),
            epoch: Instant::now(),
            queue_capacity: config.queue_capacity,
            queue_bytes: config.queue_bytes,
            queued_bytes: AtomicUsize::new(0),
            wake_at: AtomicUsize::new(config.batch_size),
            wake: Notify::new(),
            resolved: AtomicU64::new(0),
            batch_done: Notify::new(),
            spool_wake: Notify::new(),
            spooling: watch::Sender::new(spool.is_some()),
        });
        let spooled = spool.is_some();
        match spool {
            None => {
                tasks.push(Box::pin(
                    Task::new(sink, rx, Arc::clone(&shared), config.clone(), true).run(),
                ));
            }
            Some(spool) => {
                let mut spool = spool.clone();
                if subdir {
                    spool.dir = spool.dir.join(&*shared.name);
                }
                // The sink's queue: what the spool has synced, a few batches at a time.
                let (feed_tx, feed_rx) = mpsc::channel(config.batch_size.saturating_mul(2).max(2));
                let spooler = Spooler::open(spool, Arc::clone(&shared))?;
                tasks.push(Box::pin(spooler.run(rx, feed_tx)));
                tasks.push(Box::pin(
                    Task::new(sink, feed_rx, Arc::clone(&shared), config.clone(), false).run(),
                ));
            }
        }
        Ok(Lane {
            tx,
            shared,
            spooled,
        })
    }

    /// Queues a record of [`approx_size`](ActivityRecord::approx_size) `size` for this lane's
    /// sink; never blocks and never awaits. `false`: dropped and counted.
    #[inline]
    fn record(&self, record: Box<ActivityRecord>, size: usize) -> bool {
        let c = &self.shared.counters;
        if self.shared.closed.load(Relaxed) {
            self.dropped_closed();
            return false;
        }
        let queued = self.shared.queued_bytes.fetch_add(size, Relaxed);
        if queued > 0 && queued + size > self.shared.queue_bytes {
            self.shared.queued_bytes.fetch_sub(size, Relaxed);
            self.dropped_full();
            return false;
        }
        // Counted before the send so that the task never writes a record not yet enqueued.
        c.enqueued.fetch_add(1, Relaxed);
        match self.tx.try_send(Msg::Record(record, size)) {
            Ok(()) => {
                let queued = self.tx.max_capacity() - self.tx.capacity();
                if !self.spooled {
                    if queued >= self.shared.wake_at.load(SeqCst) {
                        self.shared.wake.notify_one();
                    }
                } else if queued >= self.shared.queue_capacity.div_ceil(2)
                    || self.shared.queued_bytes.load(Relaxed) >= self.shared.queue_bytes / 2
                {
                    // The spooler takes records at its next sync; half a queue is taken now.
                    self.shared.spool_wake.notify_one();
                }
                true
            }
            Err(e) => {
                c.enqueued.fetch_sub(1, Relaxed);
                self.shared.queued_bytes.fetch_sub(size, Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => self.dropped_full(),
                    mpsc::error::TrySendError::Closed(_) => self.dropped_closed(),
                }
                false
            }
        }
    }

    fn dropped_full(&self) {
        self.shared
            .counters
            .dropped_queue_full
            .fetch_add(1, Relaxed);
        if let Some(n) = self.shared.queue_full.dropped(self.shared.epoch) {
            self.shared.warn_queue_full(n);
        }
    }

    fn dropped_closed(&self) {
        self.shared.counters.dropped_closed.fetch_add(1, Relaxed);
        if let Some(n) = self.shared.after_close.dropped(self.shared.epoch) {
            self.shared.warn_after_close(n);
        }
    }

    /// This lane's counters.
    fn stats(&self) -> WriterStats {
        self.shared.counters.snapshot()
    }

    /// Whether the lane refuses new records.
    fn is_closed(&self) -> bool {
        self.shared.closed.load(Relaxed) || self.tx.is_closed()
    }

    /// Waits until every record queued before the call has been written or failed.
    async fn flush(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.shared.closed.load(Relaxed) || self.tx.send(Msg::Flush(done_tx)).await.is_err() {
            self.finished().await;
            return;
        }
        self.shared.wake.notify_one();
        self.shared.spool_wake.notify_one();
        // An error means the task dropped the marker while ending: nothing is left to wait for.
        let _ = done_rx.await;
    }

    /// Stops accepting records and asks the task to drain by `at` (the first request wins).
    fn stop(&self, at: Instant) {
        self.shared.closed.store(true, Relaxed);
        self.shared.stop.send_if_modified(|stop| {
            let first = stop.is_none();
            if first {
                *stop = Some(at);
            }
            first
        });
    }

    /// Waits until the task (and the spooler, if any) has ended; returns the final stats.
    async fn finished(&self) -> WriterStats {
        let mut done = self.shared.done.subscribe();
        let mut stats = match done.wait_for(Option::is_some).await {
            Ok(stats) => stats.unwrap_or_else(|| self.stats()),
            // The sender lives in `shared`, which this handle holds.
            Err(_) => self.stats(),
        };
        let mut spooling = self.shared.spooling.subscribe();
        let _ = spooling.wait_for(|running| !running).await;
        stats.spool_bytes = self.shared.counters.spool_bytes.load(Relaxed);
        stats
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
        assert_eq!(c.sink_timeout, Duration::from_secs(30));
        assert_eq!(c.queue_bytes, 64 << 20);
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
            (
                WriterConfig::default().with_sink_timeout(Duration::ZERO),
                "sink_timeout",
            ),
            (WriterConfig::default().with_queue_bytes(0), "queue_bytes"),
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
