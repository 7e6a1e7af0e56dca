//! The `ingest` program end to end: a stream of its own on NATS_URL, a database of its own on
//! DATABASE_URL; records published as gateways do come out as rows, `/metrics` counts them,
//! and SIGTERM drains and exits 0. And `/metrics` while the ingester waits for its JetStream
//! cluster's quorum (a 3-node cluster of its own: `nats-server` on PATH, or NATS_SERVER).

use std::process::Stdio;
use std::time::Duration;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use testkit::nats::{Cluster, TestStream, server_url};
use testkit::storage::data::arb_record;
use testkit::storage::postgres::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tower_activity::ActivitySink;
use tower_activity::sink::NatsSink;

async fn get_metrics(addr: &str) -> Option<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).await.ok()?;
    Some(text)
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn records_become_rows_and_metrics_count_them() {
    let stream = TestStream::new();
    let db = TestDb::create().await;
    let metrics = free_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args(["--nats-url", &server_url(), "--database-url", &db.url()])
        .args(["--stream", stream.name(), "--subject", stream.subject()])
        .args(["--metrics-addr", &metrics, "--log-every", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the ingest binary starts");

    let mut runner = TestRunner::deterministic();
    let records = proptest::collection::vec(arb_record(), 250)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    // The ingester creates the stream if it starts first; the sink uses it then.
    let sink = loop {
        match NatsSink::builder()
            .url(server_url())
            .stream(stream.config.clone())
            .build()
            .await
        {
            Ok(sink) => break sink,
            Err(e) => {
                assert!(child.try_wait().unwrap().is_none(), "ingest exited: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    sink.write(&records).await.unwrap();

    let pool = db.pool(1).await;
    let mut rows = 0i64;
    for _ in 0..300 {
        rows = sqlx::query_scalar("SELECT count(*) FROM activity_log")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        if rows == 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows, 250, "every record is a row");

    let text = get_metrics(&metrics).await.expect("/metrics answers");
    assert!(text.contains("ingest_connected 1"), "{text}");
    assert!(text.contains("ingest_records_written_total 250"), "{text}");
    assert!(text.contains("ingest_lag_pending_messages 0"), "{text}");
    assert!(text.contains("ingest_sink_failures_total 0"), "{text}");
    let batches: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ingest_batches_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("ingest_batches_total is a number: {text}"));
    assert!(
        (1..=250).contains(&batches),
        "{batches} batches for 250 records"
    );
    assert!(
        text.contains("# TYPE ingest_records_per_second gauge"),
        "{text}"
    );

    terminate(&mut child).await;
}

/// SIGTERM; the ingester drains and exits 0.
async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("SIGTERM ends the ingester")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// The value of the sample `name` in a `/metrics` text.
fn sample<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
}

/// Whether the ingester's `/metrics` at `addr` reads `ingest_connected 1` within `secs`
/// seconds; panics if the process exits meanwhile.
async fn connects(addr: &str, child: &mut tokio::process::Child, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        let text = get_metrics(addr).await.unwrap_or_default();
        if sample(&text, "ingest_connected") == Some("1") {
            return true;
        }
        assert!(child.try_wait().unwrap().is_none(), "ingest exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn metrics_answer_while_the_ingester_waits_for_a_quorum() {
    let mut cluster = Cluster::start();
    let db = TestDb::create().await;
    let metrics = free_addr();
    let ingest = |url: String, durable: &str| {
        Command::new(env!("CARGO_BIN_EXE_ingest"))
            .args(["--nats-url", &url, "--database-url", &db.url()])
            .args(["--replicas", "3", "--durable", durable])
            .args(["--metrics-addr", &metrics])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the ingest binary starts")
    };
    // A first ingester makes the stream (3 replicas) once the new cluster has a leader.
    let mut first = ingest(cluster.urls(), "ingest");
    assert!(
        connects(&metrics, &mut first, 30).await,
        "the first ingester connected to the new cluster"
    );
    terminate(&mut first).await;

    // Two nodes down: a consumer of a new name needs a quorum, so the next ingester waits.
    cluster.kill(1);
    cluster.kill(2);
    let mut child = ingest(cluster.url(0), "ingest-after-the-election");
    let mut waiting = None;
    for _ in 0..50 {
        if let Some(text) = get_metrics(&metrics).await {
            waiting = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = waiting.expect("/metrics answers while the ingester waits");
    assert_eq!(sample(&text, "ingest_connected"), Some("0"), "{text}");
    assert_eq!(
        sample(&text, "ingest_records_written_total"),
        Some("0"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "ingest exited without a quorum"
    );
    let text = get_metrics(&metrics).await.expect("/metrics still answers");
    assert_eq!(sample(&text, "ingest_connected"), Some("0"), "{text}");

    cluster.restart(1);
    cluster.restart(2);
    assert!(
        connects(&metrics, &mut child, 40).await,
        "the ingester connected once the nodes were back"
    );
    terminate(&mut child).await;
}

#[tokio::test]
async fn a_bad_flag_exits_2_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args(["--database-url", "postgres://h/db", "--batch-size", "lots"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--batch-size") && err.contains("lots"),
        "{err}"
    );
}
