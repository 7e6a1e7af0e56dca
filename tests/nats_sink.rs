//! NatsSink against the real server at NATS_URL (default nats://127.0.0.1:4222): each test
//! has a stream of its own. A test that cannot reach NATS fails, naming the variable.

use std::time::Duration;

use async_nats::jetstream;
use testkit::nats::{TestStream, server_url};
use testkit::storage::data::{arb_record, empty_record, full_record};
use tower_activity::sink::{NatsSink, StreamConfig};
use tower_activity::{ActivityLayer, ActivityRecord, ActivitySink};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

async fn sink(stream: &TestStream) -> NatsSink {
    NatsSink::builder()
        .url(server_url())
        .stream(stream.config.clone())
        .build()
        .await
        .unwrap_or_else(|e| panic!("NATS_URL={:?}: {e}", server_url()))
}

/// `n` random records (proptest's generator, fixed seed).
fn random_records(n: usize) -> Vec<ActivityRecord> {
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(arb_record(), n);
    strategy.new_tree(&mut runner).unwrap().current()
}

/// The stream's messages in order: (Nats-Msg-Id, decoded record).
async fn stored(stream: &TestStream) -> Vec<(String, ActivityRecord)> {
    let js = stream.jetstream().await;
    let mut s = js.get_stream(stream.name()).await.unwrap();
    let count = s.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    for seq in 1..=count {
        let m = s.get_raw_message(seq).await.unwrap();
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let record: ActivityRecord = serde_json::from_slice(&m.payload).unwrap();
        out.push((id, record));
    }
    out
}

#[tokio::test]
async fn every_record_is_one_message_named_by_its_id() {
    let stream = TestStream::new();
    let sink = sink(&stream).await;
    let mut records = vec![full_record("ada"), empty_record("bo")];
    records.extend(random_records(200));
    sink.write(&records).await.unwrap();
    let messages = stored(&stream).await;
    assert_eq!(messages.len(), records.len());
    for ((id, got), sent) in messages.iter().zip(&records) {
        assert_eq!(id, &sent.id.to_string(), "Nats-Msg-Id is the record id");
        assert_eq!(got, sent, "the message is the record, field for field");
    }
}

/// A batch larger than the client's 5,000 unacknowledged publishes (each holds a permit until
/// its acknowledgement is read) is written whole: the write reads acknowledgements as it
/// publishes. Sent all before reading any, it waited forever for its own permits.
#[tokio::test]
async fn a_batch_past_the_clients_inflight_limit_is_written() {
    let stream = TestStream::new();
    let sink = sink(&stream).await;
    let records = random_records(12_000);
    let written = tokio::time::timeout(Duration::from_secs(300), sink.write(&records)).await;
    written
        .expect("the write finishes (it hung at 5,000 publishes)")
        .unwrap();
    assert_eq!(stream.messages().await, 12_000);
}

#[tokio::test]
async fn a_retried_batch_lands_once() {
    let stream = TestStream::new();
    let sink = sink(&stream).await;
    let records = random_records(50);
    sink.write(&records[..30]).await.unwrap();
    // The writer retries a batch whose acks were lost: some records are already in.
    sink.write(&records).await.unwrap();
    sink.write(&records[10..20]).await.unwrap();
    assert_eq!(
        stream.messages().await,
        50,
        "the duplicate window drops repeats"
    );
    let ids: Vec<_> = stored(&stream)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let sent: Vec<_> = records.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, sent);
}

#[tokio::test]
async fn an_unacknowledged_batch_is_transient() {
    let stream = TestStream::new();
    let sink = sink(&stream).await;
    stream
        .jetstream()
        .await
        .delete_stream(stream.name())
        .await
        .unwrap();
    let err = sink.write(&random_records(5)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("not acknowledged"), "{err}");
}

#[tokio::test]
async fn the_stream_is_created_with_the_configured_limits() {
    let stream = TestStream::new();
    let config = stream
        .config
        .clone()
        .with_duplicate_window(Duration::from_secs(30))
        .with_max_age(Duration::from_secs(3600));
    NatsSink::builder()
        .url(server_url())
        .stream(config)
        .build()
        .await
        .unwrap();
    let js = stream.jetstream().await;
    let info = js
        .get_stream(stream.name())
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(info.config.subjects, vec![stream.subject().to_owned()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(30));
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.config.num_replicas, 1);
    assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
}

#[tokio::test]
async fn a_stream_that_does_not_take_the_subject_is_refused() {
    let stream = TestStream::new();
    sink(&stream).await;
    let other = stream.config.clone().with_subject("elsewhere.records");
    let err = NatsSink::builder()
        .url(server_url())
        .stream(other)
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not take subject elsewhere.records"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_at_once_naming_it() {
    let err = NatsSink::builder()
        .url("nats://127.0.0.1:1")
        .stream(StreamConfig::default())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nats://127.0.0.1:1"), "{err}");
    assert!(err.contains("nats-server"), "the hint: {err}");
}

/// Behind the writer: a layer's records reach the stream, and a stream that appears late
/// (JetStream down at first) only delays them.
#[tokio::test]
async fn the_writer_retries_until_the_stream_is_back() {
    let stream = TestStream::new();
    let sink = sink(&stream).await;
    let js = stream.jetstream().await;
    js.delete_stream(stream.name()).await.unwrap();
    let config = tower_activity::WriterConfig::default()
        .with_batch_interval(Duration::from_millis(10))
        .with_retry_backoff(Duration::from_millis(20));
    let layer = ActivityLayer::builder(sink).writer_config(config).build();
    let writer = layer.writer().clone();
    let events = layer.events();
    for record in random_records(20) {
        assert!(events.record_raw(record));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        writer.stats().retried > 0,
        "the missing stream failed the batch"
    );
    js.get_or_create_stream(jetstream::stream::Config {
        name: stream.name().to_owned(),
        subjects: vec![stream.subject().to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
    let stats = writer.shutdown(Duration::from_secs(20)).await;
    assert_eq!((stats.written, stats.failed), (20, 0));
    assert_eq!(stream.messages().await, 20);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// What the ingester decodes is what the gateway encoded: the message payload is the
    /// record's JSON, and every record survives it unchanged.
    #[test]
    fn the_payload_round_trips(record in arb_record()) {
        let bytes = serde_json::to_vec(&record).unwrap();
        let back: ActivityRecord = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(back, record);
    }
}
