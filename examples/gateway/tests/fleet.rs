//! Fleet parity: 4 gateway processes in fleet mode (`ACTIVITY_NATS_URL`), 2 `ingest` processes
//! sharing one durable consumer, a 3-node JetStream cluster (stream replicas 3) of
//! `nats-server` processes, and a PostgreSQL server of the test's own (restarting the shared
//! one would break everyone else's tests), all on free loopback ports. Mid-load, PostgreSQL is
//! stopped for two seconds and started again, the node leading the stream is
//! killed, and one ingester is killed (SIGKILL, holding unacknowledged messages) and started
//! again. Every answered request's `x-activity-id` must then have exactly one row, and the
//! daily rollup's counts must equal the rows.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mock_upstream::wire::Api;
use serde_json::{Value, json};
use testkit::nats::Cluster;
use testkit::pg_server::PgServer;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tower_activity::sink::{NatsSink, StreamConfig};
use uuid::Uuid;

const GATEWAYS: usize = 4;
/// A bound on the load, far above what the disruptions take (about 10 s).
const MAX_REQUESTS: usize = 50_000;
const CONCURRENCY: usize = 16;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An `ingest` process and the address of its `/metrics`.
struct Ingest {
    child: Child,
    metrics: SocketAddr,
}

/// The workspace's `ingest` binary, next to the gateway's. Cargo builds a package's own
/// binaries for its tests, not another's: it is built here (a no-op when fresh).
fn ingest_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_gateway")).parent().unwrap();
    let mut build = std::process::Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "-p", "ingest", "--bin", "ingest"]);
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let built = build.status().expect("cargo runs");
    assert!(built.success(), "building the ingest binary failed");
    dir.join("ingest")
}

/// An ingester on every node, sharing the durable consumer `ingest`. A message it held
/// unacknowledged when it died is redelivered after the 10 s acknowledgement wait.
async fn start_ingest(bin: &Path, cluster: &Cluster, database_url: &str) -> Ingest {
    let metrics = free_addr();
    let mut child = Command::new(bin)
        .args([
            "--nats-url",
            &cluster.urls(),
            "--database-url",
            database_url,
        ])
        .args(["--replicas", "3", "--batch-size", "200"])
        .args(["--ack-wait-secs", "10", "--sink-timeout-secs", "5"])
        .args(["--metrics-addr", &metrics.to_string(), "--log-every", "5"])
        .env("RUST_LOG", "error,ingest=info")
        .stdout(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the ingest binary starts");
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(metrics).await.is_ok() {
            return Ingest { child, metrics };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ingest exited at startup: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ingest never listened on {metrics}");
}

/// `ingest_records_written_total` of a running ingester (0 if it cannot be read).
async fn written(client: &HttpClient, ingest: &Ingest) -> u64 {
    let request = Request::get(format!("http://{}/metrics", ingest.metrics))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let Ok(response) = client.request(request).await else {
        return 0;
    };
    let body = response.into_body().collect().await.map(|b| b.to_bytes());
    let text = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("ingest_records_written_total ")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// SIGTERM: the ingester drains and must exit 0.
async fn stop(child: &mut Child, what: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} stops"))
        .unwrap();
    assert!(status.success(), "{what} exited with {status}");
}

/// Gateway `n`, its first NATS server node `n % 3` (each learns the others).
async fn start_gateway(n: usize, cluster: &Cluster, database_url: &str) -> Gateway {
    let addr = free_addr();
    let nats: Vec<String> = (0..3).map(|k| cluster.url((n + k) % 3)).collect();
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("GATEWAY_ADDR", addr.to_string())
        .env("DATABASE_URL", database_url)
        .env("ACTIVITY_NATS_URL", nats.join(","))
        .env("ACTIVITY_NATS_REPLICAS", "3")
        .env("ACTIVITY_BATCH_INTERVAL_MS", "50")
        .env("SHUTDOWN_GRACE_SECS", "5")
        .env("RUST_LOG", "error,gateway=info")
        .env_remove("UPSTREAM_URL")
        .stdout(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts");
    let mut gateway = Gateway { child, addr };
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return gateway;
        }
        if let Some(status) = gateway.child.try_wait().unwrap() {
            panic!("gateway {n} exited at startup: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gateway {n} never listened on {addr}");
}

async fn post(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Option<String>, Bytes) {
    let mut request =
        Request::post(format!("http://{addr}{path}")).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let id = response
                .headers()
                .get("x-activity-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, id, body)
        }
        Err(_) => (StatusCode::BAD_GATEWAY, None, Bytes::new()),
    }
}

/// The stream with 3 replicas, once the cluster has elected its JetStream leader.
async fn create_stream(cluster: &Cluster, stream: &StreamConfig) {
    for _ in 0..120 {
        let built = NatsSink::builder()
            .url(cluster.urls())
            .stream(stream.clone())
            .build()
            .await;
        if built.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the 3-node cluster never accepted a stream with 3 replicas");
}

/// The node (0–2) leading the stream, once there is one other than `not` (after a kill, the
/// survivors elect a new leader).
async fn stream_leader(cluster: &Cluster, name: &str, not: Option<usize>) -> usize {
    let servers: Vec<String> = cluster.urls().split(',').map(str::to_owned).collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    for _ in 0..600 {
        if let Ok(mut stream) = js.get_stream(name).await {
            if let Ok(info) = stream.info().await {
                let leader = info.cluster.as_ref().and_then(|c| c.leader.as_deref());
                let node = leader.and_then(|l| l.trim_start_matches('n').parse().ok());
                if let Some(node) = node.filter(|n| Some(*n) != not) {
                    return node;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name} has no leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_request_has_one_row_through_a_node_kill_and_a_database_restart() {
    let mut cluster = Cluster::start();
    let pg = PgServer::start();
    let stream = StreamConfig::default().with_replicas(3);
    create_stream(&cluster, &stream).await;

    // The first gateway migrates the database; the ingesters find it done.
    let mut gateways = vec![start_gateway(0, &cluster, &pg.url()).await];
    for n in 1..GATEWAYS {
        gateways.push(start_gateway(n, &cluster, &pg.url()).await);
    }
    // Two ingester processes, one durable consumer.
    let ingest = tokio::task::block_in_place(ingest_binary);
    let mut ingesters = Vec::new();
    for _ in 0..2 {
        ingesters.push(start_ingest(&ingest, &cluster, &pg.url()).await);
    }

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (status, _, body) = post(
        &client,
        gateways[0].addr,
        "/auth/register",
        None,
        &json!({"email": "fleet@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let key: String = serde_json::from_slice::<Value>(&body).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // The load: chat completions (JSON and streams), round robin over the gateways.
    let addrs: Vec<SocketAddr> = gateways.iter().map(|g| g.addr).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    // The load runs until both disruptions are over and a little after (at most MAX_REQUESTS).
    let load_over = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, addrs, next, answered, done, key, load_over) = (
            client.clone(),
            addrs.clone(),
            next.clone(),
            answered.clone(),
            done.clone(),
            key.clone(),
            load_over.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !load_over.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MAX_REQUESTS {
                    break;
                }
                let stream = i % 2 == 0;
                let body = Api::Chat.body(stream, None);
                let (status, id, _) = post(
                    &client,
                    addrs[i % addrs.len()],
                    &Api::Chat.path(stream),
                    Some(&key),
                    &body,
                )
                .await;
                // Every proxied answer names its record, an error's too (a 500 while
                // PostgreSQL restarts is a request in the log like any other).
                if status == StatusCode::OK {
                    assert!(id.is_some(), "an answered request names its record");
                }
                if let Some(id) = id {
                    answered.lock().await.push(id.parse().unwrap());
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = std::time::Instant::now();
    let load_started = chrono::Utc::now();
    let log = |what: &str| {
        eprintln!(
            "{:>6.1?} {what}: {} requests done",
            started.elapsed(),
            done.load(Ordering::Relaxed),
        )
    };
    while done.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log("stopping PostgreSQL");
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| pg.start_server());
    log("PostgreSQL started");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader = stream_leader(&cluster, &stream.name, None).await;
    cluster.kill(leader);
    log(&format!("killed NATS node {leader}, the stream's leader"));
    let at_kill = done.load(Ordering::Relaxed);
    let new_leader = stream_leader(&cluster, &stream.name, Some(leader)).await;
    log(&format!("node {new_leader} leads the stream"));
    // An ingester dies with what it holds unacknowledged, and comes back.
    let first = written(&client, &ingesters[0]).await;
    ingesters[0].child.kill().await.unwrap();
    log(&format!(
        "killed ingester 0 (SIGKILL) after it wrote {first} records"
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    ingesters[0] = start_ingest(&ingest, &cluster, &pg.url()).await;
    log("ingester 0 started again");
    tokio::time::sleep(Duration::from_secs(2)).await;
    load_over.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    log("load over");
    assert!(
        done.load(Ordering::Relaxed) > at_kill + 100,
        "the load went on after the node was killed"
    );
    let answered: Vec<Uuid> = answered.lock().await.clone();
    let sent = done.load(Ordering::Relaxed);
    assert!(
        answered.len() > sent * 9 / 10,
        "most requests are answered: {} of {sent}",
        answered.len()
    );

    // The gateways drain their writers into JetStream and exit 0 (nothing dropped or failed).
    for (n, gateway) in gateways.iter_mut().enumerate() {
        stop(
            &mut gateway.child,
            &format!("gateway {n} (a failure: it lost records)"),
        )
        .await;
    }

    // The ingesters catch up.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url())
        .await
        .unwrap();
    let mut found = 0;
    for _ in 0..1_200 {
        found = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM activity_log WHERE id = ANY($1)")
            .bind(&answered)
            .fetch_one(&pool)
            .await
            .unwrap_or(0) as usize;
        if found == answered.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut counts = Vec::new();
    for ingest in &ingesters {
        counts.push(written(&client, ingest).await);
    }
    log(&format!(
        "caught up; the ingesters wrote {counts:?} since they started"
    ));
    for (n, ingest) in ingesters.iter_mut().enumerate() {
        stop(&mut ingest.child, &format!("ingester {n}")).await;
    }
    assert_eq!(found, answered.len(), "every answered request has its row");

    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM activity_log WHERE id = ANY($1)")
        .bind(&answered)
        .fetch_all(&pool)
        .await
        .unwrap();
    let unique: BTreeSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (answered.len(), answered.len()),
        "exactly one row each"
    );
    let unanswered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM activity_log WHERE kind = 'request' AND NOT (id = ANY($1))",
    )
    .bind(&answered)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unanswered, 0, "no request row without an answer naming it");
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM activity_log GROUP BY kind ORDER BY kind")
            .fetch_all(&pool)
            .await
            .unwrap();
    let rollup: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, sum(requests)::BIGINT FROM activity_daily GROUP BY kind ORDER BY kind",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rollup, rows, "the rollup counts every row once");
    let restarted: bool = sqlx::query_scalar("SELECT pg_postmaster_start_time() > $1")
        .bind(load_started)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(restarted, "PostgreSQL was restarted during the load");
    eprintln!("{:>6.1?} checked", started.elapsed());
}
