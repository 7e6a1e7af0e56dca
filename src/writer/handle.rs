//! [`ActivityWriter`]: the public handle over one lane per sink and the observers, and
//! [`SinkStats`].

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::{Lane, Observed, WriterConfig, WriterError, WriterStats, run_lanes};
use crate::record::ActivityRecord;
use crate::sink::{FanOut, Member};

/// A cloneable handle to the background task(s) that write records to the sink(s).
///
/// Every clone feeds the same queues and reads the same counters. When the last handle is
/// dropped, the tasks write what is queued (retrying transient failures, with no deadline since
/// nobody waits for them) and exit; call [`shutdown`](Self::shutdown) for a bounded drain.
///
/// [`record`](Self::record) never blocks: a bounded queue takes the record or drops it and
/// counts the drop. The task writes batches of up to [`WriterConfig::batch_size`] records,
/// or fewer once [`WriterConfig::batch_interval`] has passed since the first record of the
/// batch; it retries [`SinkError::Transient`](crate::SinkError::Transient) failures with
/// exponential backoff and splits a batch rejected with
/// [`SinkError::Permanent`](crate::SinkError::Permanent) to write every record but the bad ones.
///
/// Started over a [`FanOut`], the writer has one queue and one task per sink, each with the
/// whole [`WriterConfig`]: every record is offered to every sink, and a slow or failing sink
/// fills, retries and drops only in its own lane ([`sink_stats`](Self::sink_stats)). The
/// `FanOut`'s [observers](crate::sink::RecordObserver) read each record first, on the caller's
/// thread.
///
/// ```
/// use std::time::Duration;
/// use tower_activity::{ActivityRecord, ActivityWriter, RecordKind, WriterConfig};
/// use tower_activity::sink::MemorySink;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sink = MemorySink::new();
/// let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
/// writer.record(ActivityRecord::new(RecordKind::Request));
///
/// // At exit (after the server stopped taking requests):
/// let stats = writer.shutdown(Duration::from_secs(10)).await;
/// assert_eq!(stats.written, 1);
/// assert_eq!(sink.len(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct ActivityWriter {
    members: Arc<Members>,
}

/// What the handles share: the lanes and the observers, behind one pointer.
struct Members {
    lanes: Box<[Lane]>,
    observers: Box<[Observed]>,
    /// The `FanOut`'s order of the two, for [`ActivityWriter::sink_stats`].
    order: Box<[Slot]>,
    /// Set by `shutdown`: the observers are not called any more.
    closed: AtomicBool,
    /// The observers' counters added up when the first shutdown's drain ended.
    observed_at_shutdown: OnceLock<WriterStats>,
}

/// A member of the `FanOut`: the index of its lane or of its observer.
#[derive(Clone, Copy)]
enum Slot {
    Lane(usize),
    Observer(usize),
}

impl Members {
    /// Shows `record` to every observer; `false` (and counted) after shutdown.
    fn observe(&self, record: &ActivityRecord) -> bool {
        if self.closed.load(Relaxed) {
            self.observers.iter().for_each(Observed::dropped_closed);
            return false;
        }
        for observer in self.observers.iter() {
            observer.observe(record);
        }
        true
    }

    /// The members' names and counters, in the order of the `FanOut`.
    fn each(&self) -> impl Iterator<Item = (&Arc<str>, WriterStats)> {
        self.order.iter().map(|slot| match *slot {
            Slot::Lane(i) => (&self.lanes[i].shared.name, self.lanes[i].stats()),
            Slot::Observer(i) => (&self.observers[i].name, self.observers[i].stats()),
        })
    }
}

/// One sink's (or observer's) counters in a writer, from [`ActivityWriter::sink_stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// The sink's name in its [`FanOut`] (`"default"` for a writer started over one sink).
    pub name: Arc<str>,
    /// Its counters; the invariants of [`WriterStats`] hold for each sink on its own. An
    /// [observer](crate::sink::RecordObserver) counts each record it read as `enqueued`,
    /// `written` (`failed` if it panicked), with no batch and `queue_depth` 0.
    pub stats: WriterStats,
}

impl fmt::Debug for ActivityWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityWriter")
            .field("closed", &self.is_closed())
            .field("sinks", &self.sink_stats())
            .finish()
    }
}

impl ActivityWriter {
    /// Starts the writer's task(s) on the current Tokio runtime (or on a thread of their own
    /// with [`WriterConfig::own_thread`]) and returns its handle: `sinks` is one
    /// [`ActivitySink`](crate::ActivitySink), or a [`FanOut`] of named sinks (one queue and
    /// task each).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, unless `config` asks for a thread of its own ("ActivityWriter
    /// must be started from within a Tokio runtime"), or when `config` is invalid (see
    /// [`WriterConfig::validate`]). Use [`try_start`](Self::try_start) to get a
    /// [`WriterError`] instead.
    #[track_caller]
    pub fn start(sinks: impl Into<FanOut>, config: WriterConfig) -> Self {
        match Self::try_start(sinks, config) {
            Ok(writer) => writer,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`start`](Self::start), returning an error instead of panicking when there is no
    /// current Tokio runtime (and `config` does not ask for a thread of its own), `config` is
    /// invalid, the [`FanOut`] is empty (neither sink nor observer), or the writer's own
    /// thread cannot start.
    pub fn try_start(sinks: impl Into<FanOut>, config: WriterConfig) -> Result<Self, WriterError> {
        config.validate()?;
        let members = sinks.into().into_members();
        if members.is_empty() {
            return Err(WriterError::InvalidConfig(
                "the FanOut is empty: add a sink with FanOut::sink(name, sink) or an observer with FanOut::observer(name, observer)",
            ));
        }
        let runtime = match config.own_thread {
            true => None,
            false => {
                Some(tokio::runtime::Handle::try_current().map_err(|_| WriterError::NoRuntime)?)
            }
        };
        // Counted over the members, observers included: adding an observer beside a sink keeps
        // the spool where a second sink would have put it (the gateway's `database/`).
        let subdir = members.len() > 1;
        let mut tasks = Vec::new();
        let (mut lanes, mut observers, mut order) = (Vec::new(), Vec::new(), Vec::new());
        for (name, member) in members {
            match member {
                Member::Sink(sink) => {
                    order.push(Slot::Lane(lanes.len()));
                    lanes.push(Lane::start(name, sink, &config, subdir, &mut tasks)?);
                }
                Member::Observer(observer) => {
                    order.push(Slot::Observer(observers.len()));
                    observers.push(Observed::new(name, observer));
                }
            }
        }
        run_lanes(tasks, runtime)?;
        Ok(ActivityWriter {
            members: Arc::new(Members {
                lanes: lanes.into(),
                observers: observers.into(),
                order: order.into(),
                closed: AtomicBool::new(false),
                observed_at_shutdown: OnceLock::new(),
            }),
        })
    }

    /// Shows a record to every [observer](crate::sink::RecordObserver), then queues it for
    /// every sink; never blocks and never awaits (unless an observer does).
    ///
    /// Returns `true` when every sink's queue took the record (and the observers read it).
    /// Returns `false` when at least one dropped it: its queue was full
    /// ([`WriterStats::dropped_queue_full`]) or the writer is shut down
    /// ([`WriterStats::dropped_closed`], observers included); the other sinks still have it.
    /// Drops are logged with at most one warning per second, per reason and per sink, saying
    /// how many records were dropped. An observer that panics does not change the answer (it
    /// counts as [`failed`](WriterStats::failed), as a sink's rejection does).
    ///
    /// Strings over their caps ([`ActivityRecord::MAX_NAME`] …) are cut first, and the fields
    /// cut are named in `metadata.truncated`.
    #[inline]
    pub fn record(&self, record: ActivityRecord) -> bool {
        self.enqueue(Box::new(record))
    }

    /// [`record`](Self::record) for a record already boxed (the layer's are): the queues hold
    /// boxes, so a record is moved into them as a pointer.
    #[inline]
    pub(crate) fn enqueue(&self, mut record: Box<ActivityRecord>) -> bool {
        let size = record.capped_size();
        let members = &*self.members;
        let mut all = true;
        if !members.observers.is_empty() {
            all = members.observe(&record);
        }
        let Some((last, others)) = members.lanes.split_last() else {
            return all;
        };
        for lane in others {
            all &= lane.record(record.clone(), size);
        }
        last.record(record, size) && all
    }

    /// The current counters, added up over the sinks and observers (see [`WriterStats`]).
    pub fn stats(&self) -> WriterStats {
        self.members
            .each()
            .map(|(_, stats)| stats)
            .fold(WriterStats::default(), sum)
    }

    /// Each sink's (and observer's) counters, in the order of the [`FanOut`].
    ///
    /// ```
    /// use tower_activity::{ActivityRecord, ActivityWriter, RecordKind, WriterConfig};
    /// use tower_activity::sink::{FanOut, MemorySink, NoopSink};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sinks = FanOut::new().sink("database", MemorySink::new()).sink("audit", NoopSink);
    /// let writer = ActivityWriter::start(sinks, WriterConfig::default());
    /// writer.record(ActivityRecord::new(RecordKind::Request));
    /// writer.flush().await;
    /// let per_sink = writer.sink_stats();
    /// assert_eq!(&*per_sink[1].name, "audit");
    /// assert_eq!((per_sink[0].stats.written, per_sink[1].stats.written), (1, 1));
    /// assert_eq!(writer.stats().written, 2); // the sum
    /// # }
    /// ```
    pub fn sink_stats(&self) -> Vec<SinkStats> {
        self.members
            .each()
            .map(|(name, stats)| SinkStats {
                name: Arc::clone(name),
                stats,
            })
            .collect()
    }

    /// The counters of the sink (or observer) named `name`, as [`sink_stats`](Self::sink_stats)
    /// gives them; `None` when the writer has no member of that name.
    ///
    /// ```
    /// use tower_activity::{ActivityWriter, WriterConfig};
    /// use tower_activity::sink::{FanOut, MemorySink};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let writer = ActivityWriter::start(
    ///     FanOut::new().sink("database", MemorySink::new()),
    ///     WriterConfig::default(),
    /// );
    /// assert_eq!(writer.sink_stats_of("database").map(|s| s.enqueued), Some(0));
    /// assert!(writer.sink_stats_of("otlp").is_none());
    /// # }
    /// ```
    pub fn sink_stats_of(&self, name: &str) -> Option<WriterStats> {
        self.members
            .each()
            .find(|(member, _)| &***member == name)
            .map(|(_, stats)| stats)
    }

    /// Whether the writer refuses new records ([`shutdown`](Self::shutdown) was called, or the
    /// sinks' tasks are gone and it has no observer).
    pub fn is_closed(&self) -> bool {
        let m = &*self.members;
        m.lanes.iter().all(Lane::is_closed) && (m.observers.is_empty() || m.closed.load(Relaxed))
    }

    /// Waits until every record queued before the call has been written or failed, by every
    /// sink.
    ///
    /// The flush marker travels each queue behind those records; when a queue is full, sending
    /// it waits for room. A partial batch is written at once instead of waiting for
    /// [`WriterConfig::batch_interval`]. After [`shutdown`](Self::shutdown), waits for the drain
    /// to end. A slow sink makes this wait for it: use [`flush_sink`](Self::flush_sink) to wait
    /// for one sink only (a read-your-writes query of the database). Observers have nothing
    /// to flush: they read each record before `record` returns.
    pub async fn flush(&self) {
        // Each lane drains in its own task: waiting for them one after the other takes as long
        // as the slowest.
        for lane in self.members.lanes.iter() {
            lane.flush().await;
        }
    }

    /// Like [`flush`](Self::flush) for the sink named `name` only; `false` (at once) when the
    /// writer has no sink of that name, `true` at once for an observer's name.
    pub async fn flush_sink(&self, name: &str) -> bool {
        let m = &*self.members;
        match m.lanes.iter().find(|lane| &*lane.shared.name == name) {
            Some(lane) => {
                lane.flush().await;
                true
            }
            None => m.observers.iter().any(|o| &*o.name == name),
        }
    }

    /// Stops accepting records, writes everything queued, and returns the final counters
    /// (added up over the sinks).
    ///
    /// From the call on, [`record`](Self::record) refuses new records
    /// ([`WriterStats::dropped_closed`], counted by every sink and observer) and no observer
    /// is called any more. Every sink's queue is drained in batches, all at the
    /// same time; transient failures are retried until `deadline` (from now) passes. Records
    /// still unwritten then — including a sink call still in flight, which is cancelled — are
    /// counted as [`failed`](WriterStats::failed) and reported in one warning per sink. Returns
    /// by the deadline.
    ///
    /// Idempotent: later calls (and concurrent ones) wait for the same drain and return the same
    /// final stats; the deadline of the first call wins. The returned stats are those at the end
    /// of the drain (the observers' as the drain ends); [`stats`](Self::stats) keeps counting
    /// later drops.
    pub async fn shutdown(&self, deadline: Duration) -> WriterStats {
        // `Duration::MAX` means "no deadline"; a year is as good and does not overflow.
        let now = Instant::now();
        let at = now
            .checked_add(deadline)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let m = &*self.members;
        m.closed.store(true, Relaxed);
        for lane in m.lanes.iter() {
            lane.stop(at);
        }
        let mut total = WriterStats::default();
        for lane in m.lanes.iter() {
            total = sum(total, lane.finished().await);
        }
        // Taken once, so that every call returns the same figures.
        let observed = m.observed_at_shutdown.get_or_init(|| {
            m.observers
                .iter()
                .map(Observed::stats)
                .fold(WriterStats::default(), sum)
        });
        sum(total, *observed)
    }
}

/// Two sinks' counters added up; gauges of time take the longer.
fn sum(a: WriterStats, b: WriterStats) -> WriterStats {
    WriterStats {
        enqueued: a.enqueued + b.enqueued,
        written: a.written + b.written,
        dropped_queue_full: a.dropped_queue_full + b.dropped_queue_full,
        dropped_closed: a.dropped_closed + b.dropped_closed,
        failed: a.failed + b.failed,
        retried: a.retried + b.retried,
        sink_timeouts: a.sink_timeouts + b.sink_timeouts,
        batches: a.batches + b.batches,
        queue_depth: a.queue_depth + b.queue_depth,
        last_batch_micros: a.last_batch_micros.max(b.last_batch_micros),
        batch_micros_total: a.batch_micros_total + b.batch_micros_total,
        replayed: a.replayed + b.replayed,
        spool_full: a.spool_full + b.spool_full,
        spool_bytes: a.spool_bytes + b.spool_bytes,
        spooled: a.spooled + b.spooled,
    }
}
