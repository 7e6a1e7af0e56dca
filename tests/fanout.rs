//! Several sinks on one writer ([`FanOut`]): every sink gets every record, a failing or slow
//! sink never loses or delays another's records, and each sink is counted on its own.

use std::time::Duration;

use testkit::scripted::ScriptedSink;
use tokio::time::sleep;
use tower_activity::sink::{FanOut, MemorySink};
use tower_activity::{
    ActivityLayer, ActivityRecord, ActivityWriter, Attribution, RecordKind, SinkError,
    WriterConfig, WriterError, WriterStats,
};

fn records(n: usize) -> Vec<ActivityRecord> {
    (0..n)
        .map(|_| ActivityRecord::new(RecordKind::Request))
        .collect()
}

fn stats_of(writer: &ActivityWriter, name: &str) -> WriterStats {
    writer
        .sink_stats_of(name)
        .unwrap_or_else(|| panic!("no sink named {name}"))
}

#[tokio::test(start_paused = true)]
async fn every_sink_gets_every_record_and_is_counted_on_its_own() {
    let (a, b) = (MemorySink::new(), MemorySink::new());
    let writer = ActivityWriter::start(
        FanOut::new().sink("a", a.clone()).sink("b", b.clone()),
        WriterConfig::default().with_batch_size(7),
    );
    let sent = records(20);
    for r in &sent {
        assert!(writer.record(r.clone()));
    }
    writer.flush().await;

    let ids = |sink: &MemorySink| sink.records().iter().map(|r| r.id).collect::<Vec<_>>();
    let want: Vec<_> = sent.iter().map(|r| r.id).collect();
    assert_eq!(ids(&a), want);
    assert_eq!(ids(&b), want);
    for name in ["a", "b"] {
        let s = stats_of(&writer, name);
        assert_eq!((s.enqueued, s.written, s.batches), (20, 20, 3), "{name}");
    }
    let total = writer.stats();
    assert_eq!(
        (total.enqueued, total.written),
        (40, 40),
        "the sum over the sinks"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sink_failing_forever_neither_delays_nor_loses_the_others_records() {
    let down = ScriptedSink::new(|_, _| Err(SinkError::transient("connection refused")));
    let database = MemorySink::new();
    let config = WriterConfig::default().with_batch_interval(Duration::from_millis(100));
    let writer = ActivityWriter::start(
        FanOut::new()
            .sink("otlp", down.clone())
            .sink("database", database.clone()),
        config,
    );
    for r in records(50) {
        writer.record(r);
    }
    // One batch interval later the database has everything, while the other sink retries.
    sleep(Duration::from_millis(150)).await;
    assert_eq!(database.len(), 50);
    assert!(writer.flush_sink("database").await);
    sleep(Duration::from_secs(3)).await;
    let otlp = stats_of(&writer, "otlp");
    assert!(
        otlp.retried >= 3,
        "the failing sink keeps retrying: {otlp:?}"
    );
    assert_eq!((otlp.written, otlp.queue_depth), (0, 50));
    assert!(down.stored.is_empty());

    let total = writer.shutdown(Duration::from_secs(1)).await;
    let (otlp, db) = (stats_of(&writer, "otlp"), stats_of(&writer, "database"));
    assert_eq!((db.written, db.failed), (50, 0));
    assert_eq!((otlp.written, otlp.failed, otlp.queue_depth), (0, 50, 0));
    assert_eq!((total.written, total.failed), (50, 50));
}

#[tokio::test(start_paused = true)]
async fn a_stuck_sink_drops_only_from_its_own_queue() {
    let (stuck, open) = ScriptedSink::ok().gated();
    let database = MemorySink::new();
    let config = WriterConfig::default()
        .with_queue_capacity(10)
        .with_batch_size(5);
    let writer = ActivityWriter::start(
        FanOut::new()
            .sink("database", database.clone())
            .sink("stuck", stuck.clone()),
        config,
    );
    let mut refused = 0;
    for r in records(40) {
        if !writer.record(r) {
            refused += 1;
        }
        // Let the database's lane keep up, as a real sink would between requests.
        tokio::task::yield_now().await;
        assert!(writer.flush_sink("database").await);
    }
    assert_eq!(database.len(), 40, "the database kept every record");
    let s = stats_of(&writer, "stuck");
    assert!(s.dropped_queue_full > 0, "{s:?}");
    assert_eq!(s.enqueued + s.dropped_queue_full, 40);
    assert_eq!(stats_of(&writer, "database").dropped_queue_full, 0);
    assert_eq!(
        refused, s.dropped_queue_full,
        "record() says false when any sink dropped"
    );

    open.send_replace(true);
    writer.shutdown(Duration::from_secs(5)).await;
    let s = stats_of(&writer, "stuck");
    assert_eq!(stuck.stored.len() as u64, s.written);
    assert_eq!(s.written + s.dropped_queue_full, 40);
}

#[tokio::test(start_paused = true)]
async fn flush_sink_names_one_sink() {
    let writer = ActivityWriter::start(
        FanOut::new().sink("database", MemorySink::new()),
        WriterConfig::default(),
    );
    assert!(writer.flush_sink("database").await);
    assert!(!writer.flush_sink("nope").await);
}

#[tokio::test]
async fn an_empty_fan_out_is_refused_and_a_repeated_name_replaces() {
    match ActivityWriter::try_start(FanOut::new(), WriterConfig::default()) {
        Err(WriterError::InvalidConfig(msg)) => assert!(msg.contains("FanOut"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let (first, second) = (MemorySink::new(), MemorySink::new());
    let sinks = FanOut::new()
        .sink("db", first.clone())
        .sink("db", second.clone());
    assert_eq!(sinks.names().collect::<Vec<_>>(), ["db"]);
    let writer = ActivityWriter::start(sinks, WriterConfig::default());
    writer.record(ActivityRecord::new(RecordKind::Request));
    writer.flush().await;
    assert_eq!((first.len(), second.len()), (0, 1));
}

#[tokio::test]
async fn a_single_sink_is_a_fan_out_of_one_named_default() {
    let writer = ActivityWriter::start(MemorySink::new(), WriterConfig::default());
    let names: Vec<_> = writer.sink_stats().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [std::sync::Arc::<str>::from(FanOut::DEFAULT_NAME)]);
}

#[tokio::test]
async fn the_layer_and_its_events_write_to_every_sink() {
    let (a, b) = (MemorySink::new(), MemorySink::new());
    let (layer, guard) =
        ActivityLayer::pair(FanOut::new().sink("a", a.clone()).sink("b", b.clone()));
    assert!(
        layer
            .events()
            .record("login", "auth", "Auth", &Attribution::user("u_1"))
    );
    let stats = guard.shutdown(Duration::from_secs(1)).await;
    assert_eq!(stats.written, 2);
    assert_eq!(a.records()[0].id, b.records()[0].id);
}
