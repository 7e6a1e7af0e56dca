//! [`RecordObserver`]: reads each record on the caller's thread, without a copy or a queue.

use std::sync::Arc;

use crate::record::ActivityRecord;

/// Reads every record the [`ActivityWriter`](crate::ActivityWriter) takes, synchronously, on
/// the thread that records it: for consumers that only count or sum in memory (Prometheus
/// counters, an in-process dashboard's totals), where a [sink](super::ActivitySink) would cost
/// a copy of the record, a queue and a batch for nothing they need. Add one to a
/// [`FanOut`](super::FanOut) with [`FanOut::observer`](super::FanOut::observer), beside the
/// sinks; it plays the part of OpenTelemetry's span processor `on_end` next to its batch
/// exporters.
///
/// [`ActivityWriter::record`](crate::ActivityWriter::record) (and the layer, at the end of each
/// request) calls [`observe`](Self::observe) with `&record` before the record goes into the
/// sinks' queues. So:
///
/// - **It must be quick, and must never block or await**: it runs on the request path, inside
///   the response body's last poll or drop. Take a short lock or bump atomics; anything slow
///   (I/O, a network call, a channel that may be full) belongs in an
///   [`ActivitySink`](super::ActivitySink), which gets batches on a task of its own.
/// - **What it sees**: every record the writer takes while it is open, once, whatever the
///   sinks' queues then do with it (a sink's lane may still drop it when its queue is full, or
///   fail to write it; the observer's figures are then ahead of that sink's). It is called
///   from many threads at once.
/// - **After [`shutdown`](crate::ActivityWriter::shutdown)** begins, it is not called any more:
///   a record given to the writer then is counted
///   [`dropped_closed`](crate::WriterStats::dropped_closed) under the observer's name, as a
///   sink's lane counts it.
/// - **A panic** inside `observe` is caught: the request goes on, the other members of the
///   `FanOut` still get the record, the record counts as
///   [`failed`](crate::WriterStats::failed) under the observer's name, and a warning (at most
///   one a second, with the count) names the observer.
///
/// In [`ActivityWriter::sink_stats`](crate::ActivityWriter::sink_stats) an observer has its
/// counters under its name: a record observed counts as `enqueued` and `written`, with no
/// batch (`batches` and the batch times stay 0, so the writer's total counts the sinks'
/// batches only) and `queue_depth` 0, so the invariants of
/// [`WriterStats`](crate::WriterStats) hold for it as for a sink.
///
/// Share an observer with your own code through an [`Arc`]: `Arc<O>` and
/// `Arc<dyn RecordObserver>` are observers too.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use tower_activity::{ActivityRecord, ActivityWriter, RecordKind, WriterConfig};
/// use tower_activity::sink::{FanOut, MemorySink, RecordObserver};
///
/// /// Output tokens so far, for a gauge.
/// #[derive(Default)]
/// struct OutputTokens(AtomicU64);
///
/// impl RecordObserver for OutputTokens {
///     fn observe(&self, record: &ActivityRecord) {
///         self.0.fetch_add(record.output_tokens.unwrap_or(0), Ordering::Relaxed);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tokens = Arc::new(OutputTokens::default());
/// let sinks = FanOut::new()
///     .sink("database", MemorySink::new())
///     .observer("tokens", Arc::clone(&tokens));
/// let writer = ActivityWriter::start(sinks, WriterConfig::default());
/// let mut record = ActivityRecord::new(RecordKind::Request);
/// record.output_tokens = Some(42);
/// writer.record(record);
/// assert_eq!(tokens.0.load(Ordering::Relaxed), 42); // at once: no queue in between
/// writer.shutdown(Duration::from_secs(1)).await;
/// # }
/// ```
pub trait RecordObserver: Send + Sync + 'static {
    /// Reads one record the writer took; quick, never blocking (see the trait docs).
    fn observe(&self, record: &ActivityRecord);
}

impl<T: RecordObserver + ?Sized> RecordObserver for Arc<T> {
    fn observe(&self, record: &ActivityRecord) {
        (**self).observe(record);
    }
}

impl<T: RecordObserver + ?Sized> RecordObserver for Box<T> {
    fn observe(&self, record: &ActivityRecord) {
        (**self).observe(record);
    }
}
