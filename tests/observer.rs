//! Observers in a [`FanOut`] ([`RecordObserver`]): each reads every record the writer takes,
//! once, before `record` returns and beside the sinks; none after shutdown (counted
//! `dropped_closed`); a panicking one is counted `failed` and the others still get the record;
//! their counters keep the invariants of `WriterStats`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_activity::sink::{FanOut, MemorySink, RecordObserver};
use tower_activity::{
    ActivityLayer, ActivityRecord, ActivityWriter, Attribution, RecordKind, SpoolConfig,
    WriterConfig, WriterStats,
};
use uuid::Uuid;

/// The ids of the records observed, in order.
#[derive(Default)]
struct Seen(Mutex<Vec<Uuid>>);

impl Seen {
    fn ids(&self) -> Vec<Uuid> {
        self.0.lock().unwrap().clone()
    }
}

impl RecordObserver for Seen {
    fn observe(&self, record: &ActivityRecord) {
        self.0.lock().unwrap().push(record.id);
    }
}

/// Panics on a record of user `boom`; sees the others.
#[derive(Default)]
struct Fragile(Seen);

impl RecordObserver for Fragile {
    fn observe(&self, record: &ActivityRecord) {
        if record.user_id.as_deref() == Some("boom") {
            panic!("the observer's bug");
        }
        self.0.observe(record);
    }
}

fn record(user: &str) -> ActivityRecord {
    let mut r = ActivityRecord::new(RecordKind::Request);
    r.user_id = Some(user.to_owned());
    r
}

fn stats_of(writer: &ActivityWriter, name: &str) -> WriterStats {
    writer
        .sink_stats_of(name)
        .unwrap_or_else(|| panic!("no member named {name}"))
}

/// `enqueued == written + failed + queue_depth`, for each member and for the sum.
fn assert_invariants(writer: &ActivityWriter) {
    let mut all: Vec<(String, WriterStats)> = writer
        .sink_stats()
        .into_iter()
        .map(|s| (s.name.to_string(), s.stats))
        .collect();
    all.push(("(sum)".into(), writer.stats()));
    for (name, s) in all {
        assert_eq!(
            s.enqueued,
            s.written + s.failed + s.queue_depth,
            "{name}: {s:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_observer_reads_every_record_once_beside_the_sinks() {
    let seen = Arc::new(Seen::default());
    let database = MemorySink::new();
    let writer = ActivityWriter::start(
        FanOut::new()
            .observer("counters", Arc::clone(&seen))
            .sink("database", database.clone()),
        WriterConfig::default().with_batch_size(7),
    );
    let sent: Vec<ActivityRecord> = (0..20).map(|_| record("u")).collect();
    let want: Vec<Uuid> = sent.iter().map(|r| r.id).collect();
    for (i, r) in sent.iter().enumerate() {
        assert!(writer.record(r.clone()));
        assert_eq!(seen.ids().len(), i + 1, "read before record() returns");
    }
    let observer = stats_of(&writer, "counters");
    assert_eq!(
        (observer.enqueued, observer.written, observer.batches),
        (20, 20, 0),
        "each record counted as taken and written, with no batch: {observer:?}"
    );
    assert_eq!((observer.queue_depth, observer.failed), (0, 0));
    assert_invariants(&writer);

    writer.flush().await;
    assert_eq!(seen.ids(), want, "each record once, in order");
    assert_eq!(
        database.records().iter().map(|r| r.id).collect::<Vec<_>>(),
        want,
        "the sink still gets every record"
    );
    let names: Vec<String> = writer
        .sink_stats()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["counters", "database"], "the FanOut's order");
    let total = writer.stats();
    assert_eq!(
        (total.enqueued, total.written),
        (40, 40),
        "the sum over both"
    );
    assert_invariants(&writer);
    assert!(
        writer.flush_sink("counters").await,
        "an observer's name is known"
    );
    let stats = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((stats.written, stats.failed, stats.queue_depth), (40, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_an_observer_reads_nothing_and_counts_the_records_closed() {
    let seen = Arc::new(Seen::default());
    let database = MemorySink::new();
    let writer = ActivityWriter::start(
        FanOut::new()
            .sink("database", database.clone())
            .observer("counters", Arc::clone(&seen)),
        WriterConfig::default(),
    );
    assert!(writer.record(record("before")));
    let first = writer.shutdown(Duration::from_secs(1)).await;
    assert!(writer.is_closed());
    assert!(!writer.record(record("after")), "refused");
    assert!(!writer.record(record("after")));
    assert_eq!(seen.ids().len(), 1, "not observed after shutdown");
    let observer = stats_of(&writer, "counters");
    assert_eq!(
        (observer.enqueued, observer.written, observer.dropped_closed),
        (1, 1, 2),
        "{observer:?}"
    );
    assert_eq!(
        stats_of(&writer, "database").dropped_closed,
        2,
        "as a lane counts them"
    );
    assert_eq!(
        writer.shutdown(Duration::from_secs(1)).await,
        first,
        "shutdown returns the same final stats again"
    );
    assert_eq!((first.written, first.dropped_closed), (2, 0));
    assert_invariants(&writer);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_observer_is_counted_failed_and_the_others_still_get_the_record() {
    let (fragile, seen) = (Arc::new(Fragile::default()), Arc::new(Seen::default()));
    let database = MemorySink::new();
    let writer = ActivityWriter::start(
        FanOut::new()
            .observer("fragile", Arc::clone(&fragile))
            .sink("database", database.clone())
            .observer("counters", Arc::clone(&seen)),
        WriterConfig::default(),
    );
    let sent = [record("a"), record("boom"), record("b"), record("boom")];
    for r in &sent {
        assert!(
            writer.record(r.clone()),
            "an observer's panic does not refuse the record"
        );
    }
    writer.flush().await;
    let all: Vec<Uuid> = sent.iter().map(|r| r.id).collect();
    assert_eq!(
        database.records().iter().map(|r| r.id).collect::<Vec<_>>(),
        all
    );
    assert_eq!(
        seen.ids(),
        all,
        "the observer after the panicking one reads every record"
    );
    assert_eq!(fragile.0.ids(), [all[0], all[2]]);
    let s = stats_of(&writer, "fragile");
    assert_eq!(
        (s.enqueued, s.written, s.failed, s.queue_depth),
        (4, 2, 2, 0),
        "{s:?}"
    );
    assert_eq!(stats_of(&writer, "counters").failed, 0);
    assert_invariants(&writer);
    let stats = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!(stats.failed, 2);
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_of_observers_only_counts_without_a_sink() {
    let seen = Arc::new(Seen::default());
    let writer = ActivityWriter::start(
        FanOut::new().observer("counters", Arc::clone(&seen)),
        WriterConfig::default(),
    );
    assert!(!writer.is_closed());
    assert!(writer.record(record("u")));
    writer.flush().await;
    assert_eq!(seen.ids().len(), 1);
    let stats = writer.shutdown(Duration::from_secs(1)).await;
    assert_eq!((stats.enqueued, stats.written), (1, 1));
    assert!(
        writer.is_closed(),
        "closed once shut down, with no lane to say so"
    );
    assert!(!writer.record(record("u")));
    assert_eq!(writer.stats().dropped_closed, 1);
}

#[tokio::test(start_paused = true)]
async fn the_layer_shows_its_records_and_events_to_the_observer() {
    let seen = Arc::new(Seen::default());
    let database = MemorySink::new();
    let (layer, guard) = ActivityLayer::pair(
        FanOut::new()
            .sink("database", database.clone())
            .observer("counters", Arc::clone(&seen)),
    );
    assert!(
        layer
            .events()
            .record("login", "auth", "Auth", &Attribution::user("u_1"))
    );
    assert_eq!(seen.ids().len(), 1);
    guard.shutdown(Duration::from_secs(1)).await;
    assert_eq!(seen.ids(), [database.records()[0].id]);
}

#[tokio::test(start_paused = true)]
async fn an_observer_reads_the_record_with_its_strings_capped() {
    #[derive(Default)]
    struct Lengths(Mutex<Vec<usize>>);
    impl RecordObserver for Lengths {
        fn observe(&self, record: &ActivityRecord) {
            let model = record.model.as_deref().unwrap_or_default();
            self.0.lock().unwrap().push(model.len());
        }
    }
    let lengths = Arc::new(Lengths::default());
    let writer = ActivityWriter::start(
        FanOut::new().observer("lengths", Arc::clone(&lengths)),
        WriterConfig::default(),
    );
    let mut r = record("u");
    r.model = Some("m".repeat(ActivityRecord::MAX_NAME * 4));
    writer.record(r);
    let seen = lengths.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0] <= ActivityRecord::MAX_NAME, "{seen:?}");
}

/// An observer beside one sink keeps the spool where a second sink would have put it: in the
/// sink's subdirectory (the gateway's `database/`, from when its metrics were a sink).
#[tokio::test]
async fn an_observer_beside_a_sink_keeps_the_spool_in_the_sinks_subdirectory() {
    let dir = std::env::temp_dir().join(format!("ta-observer-spool-{}", Uuid::now_v7()));
    let config = WriterConfig::default().with_spool(SpoolConfig::new(&dir));
    let writer = ActivityWriter::try_start(
        FanOut::new()
            .sink("database", MemorySink::new())
            .observer("counters", Seen::default()),
        config,
    )
    .unwrap();
    writer.record(record("u"));
    writer.flush().await;
    writer.shutdown(Duration::from_secs(5)).await;
    assert!(dir.join("database").is_dir());
    assert!(!dir.join("counters").exists(), "no spool for an observer");
    let _ = std::fs::remove_dir_all(&dir);
}
