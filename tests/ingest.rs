//! The ingester against the real server at NATS_URL (default nats://127.0.0.1:4222) and, for
//! the database, DATABASE_URL: each test has a stream and a database of its own. A test that
//! cannot reach either fails, naming the variable.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::HeaderMap;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use testkit::nats::{TestStream, server_url};
use testkit::scripted::ScriptedSink;
use testkit::storage::data::arb_record;
use testkit::storage::postgres::TestDb;
use tokio::sync::oneshot;
use tower_activity::ingest::{IngestConfig, IngestStats, Ingester};
use tower_activity::sink::{MemorySink, NatsSink, PostgresSink};
use tower_activity::{ActivityRecord, ActivitySink, SinkError};
use uuid::Uuid;

fn random_records(n: usize) -> Vec<ActivityRecord> {
    let mut runner = TestRunner::deterministic();
    proptest::collection::vec(arb_record(), n)
        .new_tree(&mut runner)
        .unwrap()
        .current()
}

async fn publish(stream: &TestStream, records: &[ActivityRecord]) {
    let sink = NatsSink::builder()
        .url(server_url())
        .stream(stream.config.clone())
        .build()
        .await
        .unwrap_or_else(|e| panic!("NATS_URL={:?}: {e}", server_url()));
    sink.write(records).await.unwrap();
}

/// Publishes `records` again without `Nats-Msg-Id`, so JetStream keeps the copies: only the
/// sink's idempotence can drop them.
async fn publish_duplicates(stream: &TestStream, records: &[ActivityRecord]) {
    let js = stream.jetstream().await;
    for record in records {
        let payload = serde_json::to_vec(record).unwrap();
        js.publish_with_headers(
            stream.subject().to_owned(),
            HeaderMap::new(),
            payload.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

fn config(stream: &TestStream) -> IngestConfig {
    IngestConfig::default()
        .with_stream(stream.config.clone())
        .with_batch_size(100)
        .with_batch_wait(Duration::from_millis(20))
        .with_retry_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(200))
}

async fn ingester(config: IngestConfig) -> Ingester {
    Ingester::connect(&server_url(), config)
        .await
        .unwrap_or_else(|e| panic!("NATS_URL={:?}: {e}", server_url()))
}

/// Runs `ingester` into `sink` until `done` holds of its counters (or 60 s pass), then drains.
async fn run_until(
    ingester: &Ingester,
    sink: &(impl ActivitySink + ?Sized),
    done: impl Fn(&IngestStats) -> bool,
) -> IngestStats {
    let (stop, stopped) = oneshot::channel::<()>();
    let run = ingester.run(sink, async {
        let _ = stopped.await;
    });
    let watch = async {
        for _ in 0..600 {
            if done(&ingester.stats()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(());
    };
    let (stats, ()) = tokio::join!(run, watch);
    stats
}

async fn stored_ids(db: &TestDb) -> Vec<Uuid> {
    let pool = db.pool(1).await;
    sqlx::query_scalar("SELECT id FROM activity_log ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap()
}

/// Duplicates in the stream (a publisher retried past the duplicate window) still make one
/// row each: the sink's `ON CONFLICT (id)` drops them.
#[tokio::test]
async fn every_record_lands_once_in_postgres() {
    let stream = TestStream::new();
    let db = TestDb::create().await;
    let sink = PostgresSink::connect(&db.url()).await.unwrap();
    let records = random_records(300);
    publish(&stream, &records).await;
    publish_duplicates(&stream, &records[100..150]).await;
    assert_eq!(stream.messages().await, 350);
    let ingester = ingester(config(&stream)).await;
    let stats = run_until(&ingester, &sink, |s| s.written >= 350).await;
    assert_eq!((stats.written, stats.rejected), (350, 0));
    let mut expected: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    expected.sort();
    assert_eq!(stored_ids(&db).await, expected, "one row per record");
    let lag = ingester.lag().await.unwrap();
    assert_eq!((lag.pending, lag.ack_pending), (0, 0), "all acknowledged");
}

/// A sink that fails keeps the messages: they come back (to this or another ingester) and are
/// acknowledged only once stored.
#[tokio::test]
async fn a_failed_write_is_redelivered_and_acknowledged_only_after_the_commit() {
    let stream = TestStream::new();
    let records = random_records(120);
    publish(&stream, &records).await;
    let sink = ScriptedSink::new(|n, _| {
        if n < 3 {
            Err(SinkError::transient("database restarting"))
        } else {
            Ok(())
        }
    });
    let ingester = ingester(config(&stream)).await;
    let stats = run_until(&ingester, &sink, |s| s.written >= 120).await;
    assert_eq!(stats.written, 120);
    assert_eq!(stats.sink_failures, 3);
    assert!(stats.retried > 0 && stats.redelivered > 0, "{stats:?}");
    let stored: BTreeSet<Uuid> = sink.stored.records().iter().map(|r| r.id).collect();
    assert_eq!(stored, records.iter().map(|r| r.id).collect());
    let lag = ingester.lag().await.unwrap();
    assert_eq!((lag.pending, lag.ack_pending), (0, 0));
}

/// An ingester that dies while its sink is writing has acknowledged nothing: after the
/// acknowledgement wait another ingester of the same consumer gets every record.
#[tokio::test]
async fn what_a_dead_ingester_held_goes_to_another() {
    let stream = TestStream::new();
    let records = random_records(80);
    publish(&stream, &records).await;
    let config = config(&stream)
        .with_ack_wait(Duration::from_secs(2))
        .with_sink_timeout(Duration::from_secs(1));
    let (hung, _gate) = ScriptedSink::ok().gated();
    let first = ingester(config.clone()).await;
    let entered = hung.entered.clone();
    let dying = first.run(&hung, std::future::pending());
    tokio::select! {
        _ = dying => unreachable!("runs until dropped"),
        () = entered.notified() => {}
    }
    // The run was dropped mid-write, as a killed process would be: nothing was acknowledged.
    assert_eq!(first.stats().written, 0);
    let sink = MemorySink::new();
    let second = ingester(config).await;
    let stats = run_until(&second, &sink, |s| s.written >= 80).await;
    assert_eq!(stats.written, 80);
    assert_eq!(sink.len(), 80);
}

/// Under a backlog the sink gets full batches (what makes `PostgresSink` take its `COPY`
/// path, from 500 records), not one pull's trickle: a partial batch would have to wait the
/// whole (long) `batch_wait`, and 3,000 records must arrive as three sink calls of 1,000.
#[tokio::test]
async fn a_backlog_is_written_in_full_batches() {
    let stream = TestStream::new();
    let records = random_records(3_000);
    publish(&stream, &records).await;
    let sink = ScriptedSink::ok();
    let config = config(&stream)
        .with_batch_size(1_000)
        .with_batch_wait(Duration::from_secs(3_600));
    let ingester = ingester(config).await;
    let stats = run_until(&ingester, &sink, |s| s.written >= 3_000).await;
    assert_eq!(sink.call_sizes(), [1_000, 1_000, 1_000]);
    assert_eq!((stats.written, stats.batches), (3_000, 3));
}

/// Two ingesters on one durable consumer share the work and store every record once.
#[tokio::test]
async fn two_ingesters_share_one_consumer() {
    let stream = TestStream::new();
    let db = TestDb::create().await;
    let sink = PostgresSink::connect(&db.url()).await.unwrap();
    let records = random_records(1_000);
    publish(&stream, &records).await;
    let config = config(&stream).with_batch_size(50);
    let (a, b) = (ingester(config.clone()).await, ingester(config).await);
    let total = || a.stats().written + b.stats().written;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let watch = async {
        for _ in 0..600 {
            if total() >= 1_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send_replace(true);
    };
    let (sa, sb, ()) = tokio::join!(
        a.run(&sink, until(stopped.clone())),
        b.run(&sink, until(stopped.clone())),
        watch
    );
    assert_eq!(sa.written + sb.written, 1_000, "{sa:?} {sb:?}");
    assert_eq!(stored_ids(&db).await.len(), 1_000);
}

/// A message that is not a record is terminated (never redelivered) and counted; the others
/// are written.
#[tokio::test]
async fn a_message_that_is_not_a_record_is_terminated() {
    let stream = TestStream::new();
    let records = random_records(10);
    publish(&stream, &records[..5]).await;
    let js = stream.jetstream().await;
    js.publish(stream.subject().to_owned(), "{not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    publish(&stream, &records[5..]).await;
    let sink = MemorySink::new();
    let ingester = ingester(config(&stream)).await;
    let stats = run_until(&ingester, &sink, |s| s.written + s.rejected >= 11).await;
    assert_eq!((stats.written, stats.rejected), (10, 1));
    let lag = ingester.lag().await.unwrap();
    assert_eq!(
        (lag.pending, lag.ack_pending),
        (0, 0),
        "the poison is not pending"
    );
}

/// A record the sink refuses on its own is terminated; the rest of its batch is written.
#[tokio::test]
async fn a_record_the_sink_refuses_is_isolated() {
    let stream = TestStream::new();
    let records = random_records(30);
    let poison = records[7].id;
    publish(&stream, &records).await;
    let sink = ScriptedSink::new(move |_, batch| {
        if batch.iter().any(|r| r.id == poison) {
            Err(SinkError::permanent("value out of range"))
        } else {
            Ok(())
        }
    });
    let ingester = ingester(config(&stream)).await;
    let stats = run_until(&ingester, &sink, |s| s.written + s.rejected >= 30).await;
    assert_eq!((stats.written, stats.rejected), (29, 1));
    assert!(sink.stored.records().iter().all(|r| r.id != poison));
}

/// Stopping while a batch is being written waits for it and acknowledges it: a second
/// ingester gets exactly the records the first did not write, none twice.
#[tokio::test]
async fn shutdown_drains_the_batch_being_written() {
    let stream = TestStream::new();
    let records = random_records(40);
    publish(&stream, &records).await;
    let config = config(&stream)
        .with_batch_size(10)
        .with_ack_wait(Duration::from_secs(2))
        .with_sink_timeout(Duration::from_secs(1));
    let (sink, gate) = ScriptedSink::ok().gated();
    let first = ingester(config.clone()).await;
    let entered = sink.entered.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = first.run(&sink, async {
        let _ = stopped.await;
    });
    let drive = async {
        entered.notified().await;
        let _ = stop.send(());
        tokio::time::sleep(Duration::from_millis(200)).await;
        gate.send_replace(true);
    };
    let (stats, ()) = tokio::join!(run, drive);
    assert!(
        stats.written >= 10,
        "the batch being written was finished: {stats:?}"
    );
    assert_eq!(stats.written as usize, sink.stored.len());

    let rest = ScriptedSink::ok();
    let second = ingester(config).await;
    let left = 40 - stats.written;
    let more = run_until(&second, &rest, |s| s.written >= left).await;
    assert_eq!(more.written, left, "nothing the first wrote came back");
    let firsts: BTreeSet<Uuid> = sink.stored.records().iter().map(|r| r.id).collect();
    let seconds: Vec<Uuid> = rest.calls().iter().flat_map(|c| c.ids.clone()).collect();
    assert!(seconds.iter().all(|id| !firsts.contains(id)));
    let all: BTreeSet<Uuid> = firsts.into_iter().chain(seconds).collect();
    assert_eq!(all.len(), 40);
}

#[tokio::test]
async fn a_bad_configuration_is_refused_naming_the_field() {
    let err = Ingester::connect(
        &server_url(),
        IngestConfig::default().with_sink_timeout(Duration::from_secs(120)),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ack_wait") && err.contains("sink_timeout"),
        "{err}"
    );
}
