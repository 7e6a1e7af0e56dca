//! `fleet-bench lag`: end-to-end lag, from the end of a response to its record's row being
//! visible in PostgreSQL, through a gateway in fleet mode (its own process, its in-process
//! mock upstream, budgets in Redis at `--redis-url`), JetStream and one `ingest` process, at a
//! steady open-loop rate.
//!
//! Each answered request's `x-activity-id` goes, with the instant its body ended, to a poller
//! that asks PostgreSQL every `--poll-ms` for the rows not yet seen (`id = ANY(…)`, by primary
//! key): a row's lag is the instant of the query that first found it minus its response's
//! end, so it is over-estimated by at most one poll interval plus the query's own time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use uuid::Uuid;

use crate::args::LagArgs;
use crate::env::{self, Database, Proc};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// How long rows not yet seen are waited for after the load.
const GIVE_UP: Duration = Duration::from_secs(30);

/// One answered request: its record, its response's end, whether it is past the warm-up.
struct Answer {
    id: Uuid,
    ended: Instant,
    measured: bool,
}

/// A run's figures, in milliseconds.
struct Figures {
    sent: usize,
    answered: usize,
    lags: Vec<f64>,
    missing: usize,
}

pub async fn run(args: &LagArgs) -> Result<(), String> {
    let dir = env::binaries(&["gateway", "ingest"])?;
    for &rps in &args.rps {
        let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
        for n in 0..args.common.runs {
            let load = env::load();
            let f = one(args, &dir, rps).await?;
            let at = |q: f64| f.lags[((f.lags.len() - 1) as f64 * q).round() as usize];
            let (p50, p90, p99, max) = (at(0.5), at(0.9), at(0.99), at(1.0));
            eprintln!(
                "lag: {rps} rps, run {}: p50 {p50:.1} ms, p90 {p90:.1}, p99 {p99:.1}, max {max:.1} \
                 ({} measured of {} answered / {} sent, {} rows never seen); load {load} → {}",
                n + 1,
                f.lags.len(),
                f.answered,
                f.sent,
                f.missing,
                env::load()
            );
            if f.missing > 0 {
                return Err(format!("{} answered requests have no row", f.missing));
            }
            p50s.push(p50);
            p99s.push(p99);
        }
        eprintln!(
            "lag: {rps} rps, gateway batch {}, ingest {:?}: median p50 {:.1} ms, p99 {:.1} ms (runs: p50 {p50s:.1?}, p99 {p99s:.1?})",
            args.gateway_batch_ms
                .map_or("default".to_owned(), |ms| format!("{ms} ms")),
            args.common.ingest_flags,
            env::median(&mut p50s.clone()),
            env::median(&mut p99s.clone()),
        );
    }
    Ok(())
}

/// One run on a fresh database and stream.
async fn one(args: &LagArgs, dir: &std::path::Path, rps: u32) -> Result<Figures, String> {
    let common = &args.common;
    let db = Database::create(&common.database_url, "lag").await?;
    let stream = env::stream("LAG");
    let spool = std::env::temp_dir().join(format!("fleet-bench-spool-{}", Uuid::now_v7()));
    let outcome: Result<Figures, String> = async {
        let (ingest, _) = env::ingest(
            dir,
            &common.nats_url,
            &db.url,
            &stream,
            "ingest",
            &common.ingest_flags,
        )
        .await?;
        let addr = env::free_addr()?;
        let mut gateway = std::process::Command::new(dir.join("gateway"));
        gateway
            .env("GATEWAY_ADDR", addr.to_string())
            .env("DATABASE_URL", &db.url)
            .env("ACTIVITY_NATS_URL", &common.nats_url)
            .env("ACTIVITY_NATS_STREAM", &stream.name)
            .env("ACTIVITY_NATS_SUBJECT", &stream.subject)
            .env("ACTIVITY_SPOOL_DIR", &spool)
            .env("INITIAL_CREDITS", "1000000")
            // Budgets in Redis, as a fleet keeps them: the database's budget store (one user,
            // one balance row) times out under this load on a loaded box, and that is not
            // the path measured.
            .env("BUDGET_STORE", &args.redis_url)
            .env_remove("UPSTREAM_URL");
        if let Some(ms) = args.gateway_batch_ms {
            gateway.env("ACTIVITY_BATCH_INTERVAL_MS", ms.to_string());
        }
        let gateway = Proc::start(gateway, "gateway".into(), addr).await?;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let key = register(&client, addr).await?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&db.url)
            .await
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let poller = tokio::spawn(poll(pool, rx, args.poll));
        let (sent, answered) = drive(&client, addr, &key, rps, args, tx).await;
        let (lags, missing) = poller.await.map_err(|e| e.to_string())?;
        gateway.stop().await;
        ingest.stop().await;
        Ok(Figures {
            sent,
            answered,
            lags,
            missing,
        })
    }
    .await;
    env::delete_stream(&common.nats_url, &stream).await;
    db.drop_it().await;
    let _ = std::fs::remove_dir_all(&spool);
    let f = outcome?;
    if f.lags.is_empty() {
        return Err("no request was answered".into());
    }
    Ok(f)
}

/// A fresh user's API key.
async fn register(client: &HttpClient, addr: std::net::SocketAddr) -> Result<String, String> {
    let email = format!("lag-{}@example.com", Uuid::now_v7().simple());
    let body = serde_json::json!({ "email": email }).to_string();
    let request = Request::post(format!("http://{addr}/auth/register"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("register: {e}"))?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("register: {e}"))?
        .to_bytes();
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("register: {e}"))?;
    v["api_key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("register answered {v}"))
}

/// The open-loop load: request `i` leaves at `start + i / rps`, whatever became of the others.
/// Returns `(sent, answered)` once every request has finished; `tx` is dropped then.
async fn drive(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    key: &str,
    rps: u32,
    args: &LagArgs,
    tx: mpsc::UnboundedSender<Answer>,
) -> (usize, usize) {
    let body = Bytes::from(
        serde_json::json!({
            "model": "gpt-4o-mini", "stream": false, "max_tokens": 16,
            "messages": [{"role": "user", "content": "Say hello to the lag bench, briefly."}],
        })
        .to_string(),
    );
    let warmup = (args.warmup.as_secs_f64() * f64::from(rps)) as usize;
    let total = warmup + (args.duration.as_secs_f64() * f64::from(rps)) as usize;
    let answered = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        sleep_until(start + Duration::from_secs_f64(i as f64 / f64::from(rps))).await;
        let request = Request::post(format!("http://{addr}/v1/chat/completions"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Full::new(body.clone()))
            .expect("a valid request");
        let (client, tx, answered, refused) = (
            client.clone(),
            tx.clone(),
            answered.clone(),
            refused.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(response) = client.request(request).await else {
                refused.lock().unwrap().push(0);
                return;
            };
            let ok = response.status() == StatusCode::OK;
            if !ok {
                refused.lock().unwrap().push(response.status().as_u16());
                return;
            }
            let id = response
                .headers()
                .get("x-activity-id")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            if response.into_body().collect().await.is_err() {
                return;
            }
            let ended = Instant::now();
            if let (true, Some(id)) = (ok, id) {
                answered.fetch_add(1, Relaxed);
                let _ = tx.send(Answer {
                    id,
                    ended,
                    measured: i >= warmup,
                });
            }
        }));
    }
    drop(tx);
    for task in tasks {
        let _ = task.await;
    }
    let mut refused = refused.lock().unwrap().clone();
    if !refused.is_empty() {
        refused.sort_unstable();
        refused.dedup();
        eprintln!(
            "lag: {} of {total} requests not answered 200 (statuses {refused:?}; 0 = no answer)",
            total - answered.load(Relaxed)
        );
    }
    (total, answered.load(Relaxed))
}

/// Finds the answered requests' rows; returns the lags of the measured ones (ms, sorted) and
/// how many of them were never seen within [`GIVE_UP`] after the load.
async fn poll(
    pool: sqlx::PgPool,
    mut rx: mpsc::UnboundedReceiver<Answer>,
    every: Duration,
) -> (Vec<f64>, usize) {
    let mut waiting: HashMap<Uuid, (Instant, bool)> = HashMap::new();
    let mut lags = Vec::new();
    let mut closed_at: Option<Instant> = None;
    loop {
        loop {
            match rx.try_recv() {
                Ok(a) => {
                    waiting.insert(a.id, (a.ended, a.measured));
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if closed_at.is_some_and(|at| waiting.is_empty() || at.elapsed() > GIVE_UP) {
            break;
        }
        if !waiting.is_empty() {
            let ids: Vec<Uuid> = waiting.keys().copied().collect();
            let asked = Instant::now();
            let found: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM activity_log WHERE id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default();
            for id in found {
                if let Some((ended, true)) = waiting.remove(&id) {
                    lags.push(asked.saturating_duration_since(ended).as_secs_f64() * 1e3);
                }
            }
        }
        sleep(every).await;
    }
    lags.sort_by(f64::total_cmp);
    let missing = waiting.values().filter(|(_, measured)| *measured).count();
    (lags, missing)
}
