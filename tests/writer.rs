//! The writer's contract: never blocks, counts every drop, batches by count and time, retries
//! transient failures, isolates poison records, flushes and drains within a deadline.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::scripted::ScriptedSink;
use tokio::time::{Instant, sleep};
use tower_activity::sink::MemorySink;
use tower_activity::{
    ActivityRecord, ActivitySink, ActivityWriter, RecordKind, SinkError, WriterConfig, WriterError,
};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers

fn record() -> ActivityRecord {
    ActivityRecord::new(RecordKind::Request)
}

fn poison() -> ActivityRecord {
    let mut r = record();
    r.app = "poison".into();
    r
}

/// Rejects (permanently) any batch that holds a poison record.
fn reject_poison(_: usize, records: &[ActivityRecord]) -> Result<(), SinkError> {
    if records.iter().any(|r| r.app == "poison") {
        Err(SinkError::permanent("constraint violated"))
    } else {
        Ok(())
    }
}

/// A `tracing` subscriber that keeps (level, message, `dropped`, `id`) of every event.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<Logged>>>);

#[derive(Clone, Debug, Default)]
struct Logged {
    level: Option<Level>,
    message: String,
    dropped: Option<u64>,
    failed: Option<u64>,
    id: Option<String>,
}

impl Visit for Logged {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "dropped" => self.dropped = Some(value),
            "failed" => self.failed = Some(value),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "id" => self.id = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl Subscriber for Logs {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut logged = Logged {
            level: Some(*event.metadata().level()),
            ..Logged::default()
        };
        event.record(&mut logged);
        self.0.lock().unwrap().push(logged);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Logs {
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let guard = tracing::subscriber::set_default(logs.clone());
        (logs, guard)
    }

    fn matching(&self, level: Level, text: &str) -> Vec<Logged> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.level == Some(level) && l.message.contains(text))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Starting

#[test]
fn try_start_outside_a_runtime_is_an_error() {
    let err = ActivityWriter::try_start(MemorySink::new(), WriterConfig::default()).unwrap_err();
    assert_eq!(err, WriterError::NoRuntime);
}

/// `own_thread`: the writer brings its runtime, so it starts outside one, and it keeps
/// writing while the caller's thread does not poll it at all.
#[test]
fn a_writer_on_its_own_thread_needs_no_runtime_and_writes_everything() {
    let sink = MemorySink::new();
    let config = WriterConfig::default()
        .with_own_thread(true)
        .with_batch_interval(Duration::from_millis(5));
    let writer = ActivityWriter::try_start(sink.clone(), config).unwrap();
    for _ in 0..250 {
        assert!(writer.record(record()));
    }
    while sink.len() < 250 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = caller.block_on(writer.shutdown(Duration::from_secs(5)));
    assert_eq!(
        (stats.written, stats.failed, stats.queue_depth),
        (250, 0, 0)
    );
}

#[test]
#[should_panic(expected = "within a Tokio runtime")]
fn start_outside_a_runtime_panics_with_a_clear_message() {
    ActivityWriter::start(MemorySink::new(), WriterConfig::default());
}

#[tokio::test]
async fn invalid_config_is_refused() {
    for config in [
        WriterConfig::default().with_batch_size(0),
        WriterConfig::default().with_queue_capacity(0),
        WriterConfig::default().with_retry_backoff(Duration::ZERO),
    ] {
        let err = ActivityWriter::try_start(MemorySink::new(), config).unwrap_err();
        assert!(matches!(err, WriterError::InvalidConfig(_)), "{err}");
    }
}

#[tokio::test]
async fn an_arc_dyn_sink_works() {
    let memory = MemorySink::new();
    let sink: Arc<dyn ActivitySink> = Arc::new(memory.clone());
    let writer = ActivityWriter::start(sink, WriterConfig::default());
    assert!(writer.record(record()));
    writer.flush().await;
    assert_eq!(memory.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The request path

#[tokio::test(start_paused = true)]
async fn full_queue_drops_and_counts_the_excess_without_blocking() {
    let (logs, _guard) = Logs::install();
    let (sink, open) = ScriptedSink::ok().gated();
    let config = WriterConfig::default()
        .with_queue_capacity(4)
        .with_batch_size(1);
    let writer = ActivityWriter::start(sink.clone(), config);

    // Plug the sink: the task takes this record and waits on the gate.
    let plug = record();
    assert!(writer.record(plug.clone()));
    sink.entered.notified().await;

    // No await in this loop: `record` must return on its own every time.
    let mut accepted = vec![plug.id];
    for _ in 0..100 {
        let r = record();
        let id = r.id;
        if writer.record(r) {
            accepted.push(id);
        }
    }
    let stats = writer.stats();
    assert_eq!(
        accepted.len(),
        1 + 4,
        "the queue holds exactly its capacity"
    );
    assert_eq!(stats.enqueued, 5);
    assert_eq!(stats.dropped_queue_full, 96);
    assert_eq!(stats.queue_depth, 5);
    assert_eq!(stats.written, 0);
    let warned = logs.matching(Level::WARN, "queue_capacity");
    assert_eq!(warned.len(), 1, "one warning for the burst: {warned:?}");

    open.send(true).unwrap();
    // A second after the burst, the next batch reports the drops the first warning did not.
    sleep(Duration::from_secs(1)).await;
    writer.flush().await;

    let stored: Vec<Uuid> = sink.stored.records().iter().map(|r| r.id).collect();
    assert_eq!(
        stored, accepted,
        "every accepted record written once, in order"
    );
    let calls: usize = sink.call_sizes().iter().sum();
    assert_eq!(calls, 5, "no record sent twice");
    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed, stats.queue_depth), (5, 0, 0));
    let warned = logs.matching(Level::WARN, "queue_capacity");
    assert_eq!(warned.len(), 2, "{warned:?}");
    let reported: u64 = warned.iter().map(|w| w.dropped.unwrap()).sum();
    assert_eq!(reported, 96, "the warnings say how many were dropped");
}

#[tokio::test(start_paused = true)]
async fn the_queue_is_bounded_in_bytes_as_well_as_records() {
    let (sink, open) = ScriptedSink::ok().gated();
    // Room for records, not for bytes: about two of these 40 KB records.
    let config = WriterConfig::default()
        .with_queue_capacity(1_000)
        .with_batch_size(1)
        .with_queue_bytes(100_000);
    let writer = ActivityWriter::start(sink.clone(), config);
    let big = || {
        let mut r = record();
        for k in 0..10 {
            r.metadata.insert(format!("k{k}"), "x".repeat(4_000).into());
        }
        r
    };
    assert!(writer.record(big()), "an empty queue takes any record");
    sink.entered.notified().await;
    let accepted = 1 + (0..20).filter(|_| writer.record(big())).count();
    let stats = writer.stats();
    assert!((2..=3).contains(&accepted), "{accepted} accepted");
    assert_eq!(stats.dropped_queue_full, 21 - accepted as u64);
    assert!(writer.record(record()), "a small record still fits");

    open.send(true).unwrap();
    writer.flush().await;
    let stats = writer.stats();
    assert_eq!(stats.written, accepted as u64 + 1);
    assert_eq!(stats.queue_depth, 0);
    // Written records give their bytes back.
    assert!((0..2).all(|_| writer.record(big())));
}

#[tokio::test]
async fn strings_over_their_caps_are_cut_and_named() {
    let sink = MemorySink::new();
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
    let mut r = record();
    r.model = Some("m".repeat(900_000));
    r.session_id = Some("s".to_owned());
    writer.record(r);
    writer.flush().await;
    let stored = &sink.records()[0];
    assert_eq!(
        stored.model.as_deref().map(str::len),
        Some(ActivityRecord::MAX_NAME)
    );
    assert_eq!(stored.session_id.as_deref(), Some("s"));
    assert_eq!(stored.metadata["truncated"], serde_json::json!(["model"]));
}

// ---------------------------------------------------------------------------------------------
// Batching

#[tokio::test(start_paused = true)]
async fn batches_by_count_then_by_time() {
    let sink = ScriptedSink::ok();
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
    for _ in 0..2_500 {
        assert!(writer.record(record()));
    }
    sleep(Duration::from_millis(250)).await;

    assert_eq!(sink.call_sizes(), vec![1_000, 1_000, 500]);
    let stats = writer.stats();
    assert_eq!((stats.batches, stats.written), (3, 2_500));
    assert_eq!(sink.stored.len(), 2_500);
}

#[tokio::test(start_paused = true)]
async fn a_lone_record_is_written_after_the_batch_interval() {
    let sink = ScriptedSink::ok();
    let config = WriterConfig::default().with_batch_interval(Duration::from_millis(100));
    let writer = ActivityWriter::start(sink.clone(), config);
    let start = Instant::now();
    writer.record(record());

    sleep(Duration::from_millis(99)).await;
    assert!(
        sink.calls().is_empty(),
        "a partial batch waits for more records"
    );
    sleep(Duration::from_millis(2)).await;
    let calls = sink.calls();
    assert_eq!(calls.len(), 1, "written with no more traffic");
    assert_eq!(calls[0].at - start, Duration::from_millis(100));
    assert_eq!(writer.stats().written, 1);
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_fills_up_is_written_before_its_interval() {
    // The collector sleeps while a batch is open (it is not woken per record); a full batch
    // wakes it at once.
    let sink = ScriptedSink::ok();
    let config = WriterConfig::default()
        .with_batch_size(10)
        .with_batch_interval(Duration::from_secs(3600));
    let writer = ActivityWriter::start(sink.clone(), config);
    let start = Instant::now();
    writer.record(record());
    sleep(Duration::from_millis(5)).await;
    for _ in 0..9 {
        writer.record(record());
    }
    sleep(Duration::from_millis(1)).await;
    let calls = sink.calls();
    assert_eq!(calls.len(), 1, "written once full, not an hour later");
    assert_eq!(calls[0].ids.len(), 10);
    assert!(calls[0].at - start < Duration::from_millis(10));

    // A flush also wakes a sleeping collector.
    writer.record(record());
    sleep(Duration::from_millis(5)).await;
    writer.flush().await;
    assert_eq!(sink.call_sizes(), vec![10, 1]);
    assert!(Instant::now() - start < Duration::from_millis(20));
}

// ---------------------------------------------------------------------------------------------
// Failures

#[tokio::test(start_paused = true)]
async fn transient_failures_retry_the_same_batch_with_backoff() {
    const FAILURES: usize = 4;
    let sink = ScriptedSink::new(|n, _| {
        if n < FAILURES {
            Err(SinkError::transient("connection reset"))
        } else {
            Ok(())
        }
    });
    let config = WriterConfig::default()
        .with_retry_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(120));
    let writer = ActivityWriter::start(sink.clone(), config);
    let first: Vec<ActivityRecord> = (0..10).map(|_| record()).collect();
    for r in &first {
        writer.record(r.clone());
    }
    writer.flush().await;

    let stats = writer.stats();
    assert_eq!(stats.retried, FAILURES as u64);
    assert_eq!((stats.written, stats.failed, stats.batches), (10, 0, 1));
    let calls = sink.calls();
    assert_eq!(calls.len(), FAILURES + 1);
    let ids: Vec<Uuid> = first.iter().map(|r| r.id).collect();
    assert!(
        calls.iter().all(|c| c.ids == ids),
        "the same batch each time"
    );
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    let ms = Duration::from_millis;
    assert_eq!(
        gaps,
        vec![ms(50), ms(100), ms(120), ms(120)],
        "doubling, capped"
    );
    assert_eq!(sink.stored.records(), first, "written exactly once");
}

/// Hangs on its first call, stores on the others.
#[derive(Clone, Default)]
struct HangsOnce {
    calls: Arc<std::sync::atomic::AtomicUsize>,
    stored: MemorySink,
}

#[async_trait::async_trait]
impl ActivitySink for HangsOnce {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        self.stored.write(records).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_sink_call_is_abandoned_after_the_timeout_and_retried() {
    let (logs, _guard) = Logs::install();
    let sink = HangsOnce::default();
    let config = WriterConfig::default().with_sink_timeout(Duration::from_secs(2));
    let writer = ActivityWriter::start(sink.clone(), config);
    let r = record();
    writer.record(r.clone());
    writer.flush().await;
    assert_eq!(sink.stored.records(), vec![r]);
    let stats = writer.stats();
    assert_eq!(
        (
            stats.sink_timeouts,
            stats.retried,
            stats.written,
            stats.failed
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(sink.calls.load(Ordering::SeqCst), 2);
    assert_eq!(logs.matching(Level::WARN, "retrying").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_queue_keeps_absorbing_records_while_a_batch_is_retried() {
    let failing = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&failing);
    let sink = ScriptedSink::new(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Err(SinkError::transient("down"))
        } else {
            Ok(())
        }
    });
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(5));
    for _ in 0..5 {
        writer.record(record());
    }
    sleep(Duration::from_secs(2)).await; // the first batch is failing meanwhile
    assert!(writer.stats().retried >= 3);
    for _ in 0..20 {
        assert!(writer.record(record()), "the request path is not affected");
    }
    failing.store(false, Ordering::SeqCst);
    writer.flush().await;
    let stats = writer.stats();
    assert_eq!(
        (stats.written, stats.failed, stats.dropped_queue_full),
        (25, 0, 0)
    );
    assert_eq!(sink.stored.len(), 25);
}

#[tokio::test(start_paused = true)]
async fn a_poison_record_fails_alone_and_the_rest_of_its_batch_is_written() {
    let (logs, _guard) = Logs::install();
    let sink = ScriptedSink::new(reject_poison);
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(10));
    let mut good = Vec::new();
    let bad = poison();
    for i in 0..10 {
        if i == 6 {
            writer.record(bad.clone());
        } else {
            let r = record();
            good.push(r.id);
            writer.record(r);
        }
    }
    writer.flush().await;

    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed, stats.queue_depth), (9, 1, 0));
    assert_eq!(stats.batches, 1, "a split batch counts once");
    let mut stored: Vec<Uuid> = sink.stored.records().iter().map(|r| r.id).collect();
    stored.sort();
    good.sort();
    assert_eq!(stored, good);
    let errors = logs.matching(Level::ERROR, "rejected a record permanently");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].id.as_deref(),
        Some(bad.id.to_string().as_str()),
        "logged with its id"
    );
}

#[tokio::test(start_paused = true)]
async fn several_poison_records_in_one_batch_each_fail_alone() {
    let sink = ScriptedSink::new(reject_poison);
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(64));
    for i in 0..64 {
        writer.record(if i % 20 == 3 { poison() } else { record() });
    }
    writer.flush().await;
    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed), (60, 4));
    assert_eq!(sink.stored.len(), 60);
    assert!(sink.stored.records().iter().all(|r| r.app != "poison"));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_sink_is_handled_like_a_permanent_failure() {
    let sink = ScriptedSink::new(|_, records| {
        assert!(records.iter().all(|r| r.app != "poison"), "sink bug");
        Ok(())
    });
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(4));
    for i in 0..4 {
        writer.record(if i == 1 { poison() } else { record() });
    }
    writer.flush().await;
    assert!(writer.record(record()), "the writer survived the panic");
    writer.flush().await;
    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed), (4, 1));
    assert_eq!(sink.stored.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Flush and shutdown

#[tokio::test(start_paused = true)]
async fn flush_writes_everything_recorded_before_it() {
    let sink = ScriptedSink::ok().with_delay(Duration::from_millis(10));
    let config = WriterConfig::default()
        .with_batch_size(100)
        .with_batch_interval(Duration::from_secs(3_600));
    let writer = ActivityWriter::start(sink.clone(), config);
    for _ in 0..250 {
        writer.record(record());
    }
    writer.flush().await;
    assert_eq!(
        sink.stored.len(),
        250,
        "the partial batch did not wait for its interval"
    );
    assert_eq!(sink.call_sizes(), vec![100, 100, 50]);
    assert_eq!(writer.stats().queue_depth, 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_every_queued_record_into_a_slow_sink() {
    let sink = ScriptedSink::ok().with_delay(Duration::from_millis(5));
    let config = WriterConfig::default()
        .with_queue_capacity(16_384)
        .with_batch_size(100)
        .with_batch_interval(Duration::from_secs(3_600));
    let writer = ActivityWriter::start(sink.clone(), config);
    for _ in 0..10_000 {
        assert!(writer.record(record()));
    }

    let stats = writer.shutdown(Duration::from_secs(30)).await;
    assert_eq!(sink.stored.len(), 10_000);
    assert_eq!(
        (stats.enqueued, stats.written, stats.failed),
        (10_000, 10_000, 0)
    );
    assert_eq!((stats.batches, stats.queue_depth), (100, 0));
    assert!(
        stats.batch_micros_total >= 100 * 5_000,
        "batch time is measured"
    );
    assert_eq!(stats.last_batch_micros, 5_000);

    assert!(!writer.record(record()), "closed");
    assert!(writer.is_closed());
    assert_eq!(writer.stats().dropped_closed, 1);
    let again = writer.shutdown(Duration::from_secs(30)).await;
    assert_eq!(again, stats, "idempotent: the same final stats");
    writer.flush().await; // returns after shutdown too
}

#[tokio::test(start_paused = true)]
async fn shutdown_without_a_deadline_drains_too() {
    let sink = ScriptedSink::ok().with_delay(Duration::from_millis(5));
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
    writer.record(record());
    let stats = writer.shutdown(Duration::MAX).await;
    assert_eq!((stats.written, stats.failed), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn records_after_shutdown_count_as_dropped_closed_from_every_clone() {
    let writer = ActivityWriter::start(MemorySink::new(), WriterConfig::default());
    let other = writer.clone();
    writer.shutdown(Duration::from_secs(1)).await;
    for _ in 0..3 {
        assert!(!other.record(record()));
    }
    let stats = other.stats();
    assert_eq!((stats.dropped_closed, stats.enqueued), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_at_the_deadline_on_a_sink_failing_forever() {
    let (logs, _guard) = Logs::install();
    let sink = ScriptedSink::new(|_, _| Err(SinkError::transient("down")));
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(10));
    for _ in 0..25 {
        writer.record(record());
    }
    let start = Instant::now();
    let stats = writer.shutdown(Duration::from_secs(2)).await;

    assert!(
        start.elapsed() <= Duration::from_secs(2),
        "returned by the deadline"
    );
    assert_eq!((stats.written, stats.failed, stats.queue_depth), (0, 25, 0));
    assert!(stats.retried > 0);
    let warned = logs.matching(Level::WARN, "deadline passed");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].failed, Some(25), "the warning says how many");
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_a_sink_call_that_never_returns() {
    let (sink, _never_opened) = ScriptedSink::ok().gated();
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(3));
    for _ in 0..7 {
        writer.record(record());
    }
    sink.entered.notified().await;
    let start = Instant::now();
    let stats = writer.shutdown(Duration::from_millis(500)).await;
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!((stats.written, stats.failed, stats.queue_depth), (0, 7, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_drains_the_queue() {
    let sink = ScriptedSink::ok().with_delay(Duration::from_millis(5));
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(10));
    let clone = writer.clone();
    for _ in 0..35 {
        writer.record(record());
    }
    drop(writer);
    drop(clone);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.stored.len(), 35);
    assert_eq!(sink.call_sizes(), vec![10, 10, 10, 5]);
}

// ---------------------------------------------------------------------------------------------
// Idempotence

#[tokio::test]
async fn a_memory_sink_keeps_one_copy_of_a_record_written_twice() {
    let sink = MemorySink::new();
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
    let r = record();
    writer.record(r.clone());
    writer.flush().await;
    writer.record(r.clone());
    writer.flush().await;

    assert_eq!(writer.stats().written, 2, "the writer counts confirmations");
    assert_eq!(sink.records(), vec![r], "the sink keeps one copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_accounted_for_when_shutdown_races_many_threads() {
    let sink = MemorySink::new();
    let config = WriterConfig::default()
        .with_queue_capacity(1_024)
        .with_batch_size(256);
    let writer = ActivityWriter::start(sink.clone(), config);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                let mut accepted = 0u64;
                for _ in 0..20_000 {
                    accepted += u64::from(writer.record(record()));
                }
                accepted
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    let accepted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();

    let end = writer.stats();
    assert_eq!(end.enqueued, accepted, "true means enqueued");
    assert_eq!(
        end.enqueued + end.dropped_queue_full + end.dropped_closed,
        80_000,
        "every call counted once"
    );
    assert_eq!((end.written, end.failed, end.queue_depth), (accepted, 0, 0));
    assert_eq!(sink.len() as u64, accepted, "every accepted record stored");
    assert_eq!(
        stats.written, end.written,
        "nothing written after shutdown returned"
    );
}
