//! Fleet mode in-process: activity goes to JetStream (NATS_URL, a stream of the test's own),
//! not into the database; an ingester writes it there and the activity API reads it back.

use super::*;
use gateway::fleet::FleetConfig;
use testkit::nats::{TestStream, server_url};
use tower_activity::ingest::{IngestConfig, Ingester};
use tower_activity::sink::PostgresSink;

#[tokio::test]
async fn fleet_mode_publishes_and_the_api_reads_what_the_ingester_wrote() {
    let db = TempPg::new().await;
    let stream = TestStream::new();
    let fleet = FleetConfig {
        nats_url: server_url(),
        stream: stream.config.clone(),
    };
    let storage = Storage::open(&db.url())
        .await
        .unwrap()
        .publish_through(&fleet)
        .await
        .unwrap();
    assert!(
        storage.description.contains(stream.name()),
        "{}",
        storage.description
    );
    let mut gw = Harness::start(storage).await;
    let (_, key) = gw.register("fleet@example.com").await;
    let mut ids = Vec::new();
    for stream_it in [false, true, false] {
        let answer = gw
            .post(&Chat.path(stream_it), &key, &Chat.body(stream_it, None))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        ids.push(answer.headers["x-activity-id"].to_str().unwrap().to_owned());
    }
    gw.flush().await;
    // Published, not written: without an ingester the database has no request.
    assert_eq!(gw.log(&key, "kind=request").await["total"], 0);
    assert_eq!(stream.messages().await, 4, "register + 3 requests");

    let sink = PostgresSink::connect(&db.url()).await.unwrap();
    let ingester = Ingester::connect(
        &server_url(),
        IngestConfig::default().with_stream(stream.config.clone()),
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = ingester.run(&sink, async {
        let _ = stopped.await;
    });
    let check = async {
        let page = wait_for_rows(&gw, &key, "kind=request", 3).await;
        let _ = stop.send(());
        page
    };
    let (stats, page) = tokio::join!(run, check);
    assert!(stats.written >= 3, "{stats:?}");
    let mut got: Vec<String> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "the rows are the answered requests' records");
    let (_, writer) = gw.stop().await;
    assert_eq!((writer.written, writer.failed), (4, 0));
    db.drop_database().await;
}

#[tokio::test]
async fn an_unreachable_nats_fails_startup_naming_the_variable() {
    let fleet = FleetConfig::new("nats://127.0.0.1:1");
    let err = Storage::memory().publish_through(&fleet).await.unwrap_err();
    assert!(
        err.contains("ACTIVITY_NATS_URL=nats://127.0.0.1:1"),
        "{err}"
    );
}
