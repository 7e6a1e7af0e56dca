//! The gateway's bounds: slow bodies, connections, registrations, `/metrics`, upstream
//! timeouts, and the activity API's shared flush.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use gateway::{GatewayConfig, Limits};

use super::*;

/// The gateway binary on a free port with `env`, its address once it listens.
struct Spawned {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Spawned {
    fn start(env: &[(&str, &str)]) -> Spawned {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .env_clear()
            .env("GATEWAY_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", "memory:")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("the gateway binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().expect("the gateway logs its address").unwrap();
            if let Some(rest) = line.split("gateway on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining the log so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Spawned { child, addr }
    }

    /// Resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The 200 slow-body connections of the issue, half of them to the unauthenticated
/// `/auth/register`: the gateway's memory stays under the documented bound while they are
/// open, and it closes every one of them after the body timeout.
#[test]
fn slow_bodies_are_closed_and_memory_stays_bounded() {
    let gw = Spawned::start(&[
        ("REQUEST_BODY_IDLE_SECS", "3"),
        ("REQUEST_BODY_TIMEOUT_SECS", "3"),
        // What docs/decisions.md ("Allocator") tells operators of the `--features mimalloc`
        // build to set; glibc's malloc reads nothing of it.
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ]);
    let body = r#"{"email":"slow@example.com"}"#;
    let registered = http(
        gw.addr,
        &format!(
            "POST /auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let key = registered
        .split("\"api_key\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("registered: {registered}"))
        .to_owned();
    let idle = gw.rss_kib();
    // Each connection announces 8 MiB and sends 256 KiB of it, then nothing.
    let chunk = vec![b' '; 256 * 1024];
    let mut open = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        let head = if i % 2 == 0 {
            "POST /auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                .to_owned()
        } else {
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {key}\r\n"
            )
        };
        s.write_all(
            format!(
                "{head}content-length: 8388608\r\n\r\n{{\"model\":\"gpt-4o-mini\",\"messages\":["
            )
            .as_bytes(),
        )
        .unwrap();
        // A refused body may close the connection before all of it is written.
        let _ = s.write_all(&chunk);
        open.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let loaded = gw.rss_kib();
    // The bound (docs/decisions.md): what open slow connections hold is at most what each
    // has sent (here 256 KiB, for the half that may send that much) plus a little per
    // connection; 100 × 256 KiB = 25 MiB, so 64 MiB over idle leaves room for glibc's
    // slack. Before the bounds this was the 16 → 303 MB of the issue, never released.
    // The same bound with `--features mimalloc` (so under `cargo test --all-features`), given
    // `MIMALLOC_ARENA_EAGER_COMMIT=0`: without it mimalloc keeps the old blocks of grown
    // buffers resident, +86–100 MiB (decisions.md, "Allocator").
    let bound_mib = 64;
    assert!(
        loaded < idle + bound_mib * 1024,
        "RSS {idle} KiB idle, {loaded} KiB with 200 slow bodies (bound: {bound_mib} MiB over idle)"
    );
    // Every connection is answered and closed by the gateway: the LLM bodies with a 408
    // after the timeout; the registrations at once with a 429 (past the first ten from this
    // address) or a 413 (their body is over the small routes' cap), which the client may not
    // get to read: a socket closed with unread bytes is reset.
    let mut statuses = BTreeMap::<String, usize>::new();
    for (i, mut s) in open.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut out = Vec::new();
        let status = match s.read_to_end(&mut out) {
            Ok(_) => String::from_utf8_lossy(&out)
                .split_whitespace()
                .nth(1)
                .unwrap_or("eof")
                .to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "reset".to_owned(),
            Err(e) => panic!("connection {i} not closed by the gateway: {e}"),
        };
        let route = if i % 2 == 0 { "register" } else { "llm" };
        *statuses.entry(format!("{route} {status}")).or_default() += 1;
    }
    assert_eq!(statuses.get("llm 408"), Some(&100), "{statuses:?}");
    let register: usize = ["register 413", "register 429", "register reset"]
        .iter()
        .filter_map(|k| statuses.get(*k))
        .sum();
    assert_eq!(register, 100, "{statuses:?}");
    eprintln!(
        "RSS: {idle} KiB idle, {loaded} KiB with 200 slow bodies open, {} KiB after",
        gw.rss_kib()
    );
}

async fn harness(limits: impl FnOnce(&mut Limits), metrics_token: Option<&str>) -> Harness {
    let (mock, _task) = mock_upstream::spawn(Default::default()).await.unwrap();
    let mut config = GatewayConfig::for_upstream(UpstreamUrl::local(mock));
    limits(&mut config.limits);
    config.metrics_token = metrics_token.map(str::to_owned);
    Harness::with_config(Storage::memory(), &config).await
}

#[tokio::test]
async fn registrations_are_rate_limited_per_address() {
    let gw = harness(|l| l.register_per_minute = 3, None).await;
    for i in 0..3 {
        gw.register(&format!("r{i}@example.com")).await;
    }
    let answer = gw
        .call(
            Method::POST,
            "/auth/register",
            &[],
            json!({"email": "r4@example.com"}).to_string(),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.text()
    );
    assert_eq!(answer.json()["error"]["type"], "rate_limited");
    let retry: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Other routes are not limited.
    assert_eq!(
        gw.call(Method::GET, "/healthz", &[], "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let gw = harness(|_| {}, Some("m-secret")).await;
    for auth in [None, Some("Bearer wrong"), Some("Basic m-secret")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let answer = gw.call(Method::GET, "/metrics", &headers, "").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(!answer.text().contains("activity_records"));
    }
    let answer = gw
        .call(
            Method::GET,
            "/metrics",
            &[("authorization", "Bearer m-secret")],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.text().contains("activity_records_enqueued_total"));
    // Without a token configured, /metrics stays open (the metrics_and_health test).
}

#[tokio::test]
async fn a_silent_upstream_times_out_and_an_idle_stream_ends_interrupted() {
    // Accepts connections, reads, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut config = GatewayConfig::for_upstream(UpstreamUrl::local(silent_addr));
    config.limits.upstream_headers = Duration::from_millis(300);
    let gw = Harness::with_config(Storage::memory(), &config).await;
    let (_, key) = gw.register("silent@example.com").await;
    let answer = gw
        .post(&Chat.path(false), &key, &Chat.body(false, None))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        answer.text()
    );
    assert_eq!(answer.json()["error"]["type"], "upstream_timeout");
    let r = record(&gw.log(&key, "kind=request").await["logs"][0]);
    assert_eq!((r.outcome, r.status_code), (Outcome::Error, Some(504)));

    // A stream whose chunks come slower than the idle limit.
    let gw = harness(|l| l.upstream_idle = Duration::from_millis(300), None).await;
    let (_, key) = gw.register("idle@example.com").await;
    let bearer = format!("Bearer {key}");
    let response = gw
        .send(
            Method::POST,
            &Chat.path(true),
            &[
                ("authorization", &bearer),
                ("x-mock-delay-ms", "3000"),
                ("x-mock-chunks", "4"),
            ],
            Chat.body(true, None).to_string(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let read = response.into_body().collect().await;
    assert!(read.is_err(), "the stream was ended, not completed");
    let page = wait_for_rows(&gw, &key, "kind=request", 1).await;
    let r = record(&page["logs"][0]);
    assert_eq!(r.outcome, Outcome::Interrupted, "{:#}", page["logs"][0]);
}

/// Many concurrent activity reads share flushes: the writer cuts far fewer batches than
/// reads, and every read still sees the reader's own request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_a_flush_and_still_see_their_writes() {
    let gw = Arc::new(harness(|_| {}, None).await);
    let (_, key) = gw.register("reads@example.com").await;
    let before = gw.gateway.writer().stats().batches;
    let flushes_before = gw.gateway.state().fresh.flushes();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let gw = gw.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let answer = gw
                    .post(&Chat.path(false), &key, &Chat.body(false, None))
                    .await;
                let id = answer.headers["x-activity-id"].to_str().unwrap().to_owned();
                for _ in 0..4 {
                    let bearer = format!("Bearer {key}");
                    let log = gw
                        .call(
                            Method::GET,
                            "/user/activity/log?limit=1000",
                            &[("authorization", &bearer)],
                            "",
                        )
                        .await
                        .json();
                    assert!(
                        log["logs"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|r| r["id"] == id.as_str()),
                        "a read misses its own request"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let batches = gw.gateway.writer().stats().batches - before;
    let flushes = gw.gateway.state().fresh.flushes() - flushes_before;
    eprintln!("400 reads in {elapsed:?}: {flushes} flushes, {batches} batches");
    // One flush per coalescing window at most (each waits COALESCE first), and each flush
    // cuts at most one batch beside the writer's own one-second ones.
    let windows = (elapsed.as_millis() / gateway::fresh::COALESCE.as_millis()) as u64 + 1;
    assert!(flushes <= windows, "{flushes} flushes in {elapsed:?}");
    assert!(flushes < 400, "{flushes} flushes for 400 reads");
    assert!(
        batches <= flushes + elapsed.as_secs() + 2,
        "{batches} batches, {flushes} flushes"
    );
}

/// With `max_connections` open, the next connection waits (in the listen backlog) until one
/// closes; then it is served.
#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = harness(|l| l.max_connections = 2, None).await;
    // Two connections that send nothing hold both slots (until the header timeout, 30 s).
    let first = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let early =
        tokio::time::timeout(Duration::from_millis(500), third.read_to_end(&mut answer)).await;
    assert!(
        early.is_err(),
        "served past the cap: {:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(30), third.read_to_end(&mut answer))
        .await
        .expect("served once a slot is free")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}
