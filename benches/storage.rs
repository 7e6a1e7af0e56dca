//! Storage bench (`cargo bench --bench storage`): PostgreSQL at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), in a database of its own
//! (`tower_activity_bench`, dropped at the end).
//!
//! - insert throughput of `PostgresSink::write` at batch sizes 100, 1,000, 5,000 and 20,000,
//!   through the `UNNEST` statement and through the bulk path (binary `COPY` into the log;
//!   the sink's default for batches of 500 or more), with the CPU time PostgreSQL's backends
//!   spent per record (steadier than wall time on a shared machine);
//! - with 1,000,000 rows in the table: one user's stats over 30 days, log page 1, and page
//!   1,000 by offset and by cursor.
//!
//! `BENCH_ROWS` changes the table size (default 1,000,000). Figures go to BENCHMARKS.md.
//!
//! `cargo bench --bench storage -- --sqlite-instructions` counts instead what the SQLite store
//! costs per record, under callgrind (`storage/sqlite.rs`; no PostgreSQL needed).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use rust_decimal::Decimal;
use sqlx::Executor;
use tower_activity::query::{ActivityQuery, Cursor, LogQuery, StatsQuery};
use tower_activity::sink::{PostgresSink, TableNames};
use tower_activity::{ActivityRecord, ActivitySink, LlmApi, RecordKind, UsageSource};

use testkit::storage::data::day_ago;
use testkit::storage::postgres::TestDb;

const MODELS: [(&str, &str); 5] = [
    ("gpt-4o", "OpenAI"),
    ("gpt-4o-mini", "OpenAI"),
    ("claude-sonnet-4-5", "Anthropic"),
    ("gemini-2.5-flash", "Google"),
    ("deepseek-chat", "DeepSeek"),
];

/// A realistic record: user, model, tokens, cost, timings, a request id in the metadata.
fn record(user: &str, i: u64, timestamp: chrono::DateTime<chrono::Utc>) -> ActivityRecord {
    let (model, provider) = MODELS[(i % 5) as usize];
    let mut r = ActivityRecord::new(RecordKind::Request);
    r.timestamp = timestamp;
    r.user_id = Some(user.to_owned());
    r.session_id = Some(format!("sess-{}", i % 97));
    r.endpoint = "/v1/chat/completions".into();
    r.api = LlmApi::OpenAiChat;
    r.model = Some(model.into());
    r.provider = Some(provider.into());
    r.stream = i % 2 == 0;
    r.status_code = Some(200);
    r.input_tokens = Some(100 + i % 900);
    r.output_tokens = Some(20 + i % 300);
    r.total_tokens = Some(120 + i % 900 + i % 300);
    r.usage_source = UsageSource::Reported;
    r.cost_usd = Some(Decimal::new((i % 10_000) as i64 * 13 + 7, 9));
    r.latency_ms = Some(350.25 + (i % 1000) as f64);
    r.metadata
        .insert("request_id".into(), format!("req_{i:012}").into());
    r
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    format!(
        "median {:.2} ms, p95 {:.2} ms ({} runs)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        samples.len()
    )
}

async fn time<F, Fut>(runs: usize, mut f: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm the statement cache
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f().await;
        samples.push(start.elapsed());
    }
    summary(samples)
}

async fn insert_throughput(db: &TestDb, batch: usize, copy: bool) {
    let total = 200_000usize.max(batch * 20);
    let path = if copy { "copy" } else { "unnest" };
    let names = TableNames::new()
        .with_prefix(&format!("b{batch}_{path}_"))
        .unwrap();
    let threshold = if copy { 1 } else { usize::MAX };
    let sink = PostgresSink::from_pool(db.pool(2).await, names)
        .await
        .unwrap()
        .with_copy_threshold(threshold);
    // Live traffic: 500 users, timestamps of the last minutes.
    let now = chrono::Utc::now();
    let rows: Vec<ActivityRecord> = (0..total as u64)
        .map(|i| {
            record(
                &format!("user{}", i % 500),
                i,
                now - TimeDelta::milliseconds(i as i64),
            )
        })
        .collect();
    sink.create_partitions().await.unwrap();
    let server = backends_cpu(&sink).await;
    let (start, cpu) = (Instant::now(), cpu_time());
    for chunk in rows.chunks(batch) {
        sink.write(chunk).await.unwrap();
    }
    let (took, cpu) = (start.elapsed(), cpu_time() - cpu);
    let server = backends_cpu(&sink).await.since(&server);
    println!(
        "insert, batch {batch:>6}, {path:>6}: {total} records in {:.2} s = {:>7.0} records/s \
         ({:.2} ms per batch; CPU per record: PostgreSQL {:.2} µs, this process {:.2} µs)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / (total / batch) as f64,
        server.as_secs_f64() * 1e6 / total as f64,
        cpu.as_secs_f64() * 1e6 / total as f64,
    );
}

/// The CPU time (user + system) of each PostgreSQL backend serving the sink's database.
struct BackendsCpu(Vec<(i32, Duration)>);

impl BackendsCpu {
    /// The CPU time spent since `before` (a backend that was not there yet counts from 0).
    fn since(&self, before: &BackendsCpu) -> Duration {
        self.0
            .iter()
            .map(|(pid, now)| {
                let then = before.0.iter().find(|(p, _)| p == pid).map(|(_, t)| *t);
                now.saturating_sub(then.unwrap_or_default())
            })
            .sum()
    }
}

async fn backends_cpu(sink: &PostgresSink) -> BackendsCpu {
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .fetch_all(sink.pool())
            .await
            .unwrap();
    BackendsCpu(
        pids.into_iter()
            .map(|pid| (pid, process_cpu(&format!("/proc/{pid}/stat"))))
            .collect(),
    )
}

/// The machine's load average (1, 5, 15 minutes), to print beside the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// This process's CPU time (user + system), to tell client time from server time.
fn cpu_time() -> Duration {
    process_cpu("/proc/self/stat")
}

/// The CPU time (user + system) of the process whose `stat` file is `path` (0 if unreadable:
/// PostgreSQL on another machine).
fn process_cpu(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command; 100 Hz.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[path = "storage/sqlite.rs"]
mod sqlite;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return ExitCode::SUCCESS; // `cargo test --all-targets` runs benches in test mode
    }
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--sqlite-child", variant, n, dir] => sqlite::child(variant, n, dir),
        ["--sqlite-instructions"] => sqlite::report(),
        _ => {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(postgres());
            ExitCode::SUCCESS
        }
    }
}

/// The PostgreSQL figures.
async fn postgres() {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = TestDb::create().await;

    println!("load average before: {}", load_average());
    for (batch, copy) in [
        (100, false),
        (100, true),
        (1_000, false),
        (1_000, true),
        (5_000, false),
        (5_000, true),
        (20_000, false),
        (20_000, true),
    ] {
        insert_throughput(&db, batch, copy).await;
    }
    println!("load average after: {}", load_average());
    if std::env::var("BENCH_ONLY").as_deref() == Ok("insert") {
        return;
    }

    // The big table: `rows` records over 31 days, 2,000 users, one heavy user with 60,000.
    let sink = PostgresSink::from_pool(db.pool(4).await, TableNames::new())
        .await
        .unwrap();
    let heavy = 60_000.min(rows / 2);
    let start = Instant::now();
    let mut batch = Vec::with_capacity(5_000);
    for i in 0..rows {
        let user = if i % (rows / heavy) == 0 {
            "heavy".to_owned()
        } else {
            format!("user{}", i % 2_000)
        };
        let at = day_ago(30, 0) + TimeDelta::microseconds((i * 31 * 86_400_000_000 / rows) as i64);
        batch.push(record(&user, i, at));
        if batch.len() == 5_000 {
            sink.write(&batch).await.unwrap();
            batch.clear();
        }
    }
    sink.write(&batch).await.unwrap();
    sink.pool().execute("VACUUM ANALYZE").await.unwrap();
    let (count, heavy_rows): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE user_id = 'heavy') FROM activity_log",
    )
    .fetch_one(sink.pool())
    .await
    .unwrap();
    println!(
        "table: {count} rows ({heavy_rows} of user `heavy`), loaded in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let stats_q = StatsQuery::parse([("days", "30")]).unwrap();
    let stats = sink.stats("heavy", &stats_q).await.unwrap();
    println!("stats rows: {} requests", stats.total_requests);
    let line = time(50, || async {
        sink.stats("heavy", &stats_q).await.unwrap();
    })
    .await;
    println!("stats, one user, 30 days: {line}");

    let page1 = LogQuery::parse([("limit", "50"), ("page", "1")]).unwrap();
    let line = time(50, || async {
        sink.log("heavy", &page1).await.unwrap();
    })
    .await;
    println!("log page 1 (limit 50, with total): {line}");

    let filtered = LogQuery::parse([("limit", "50"), ("model", "claude-sonnet-4-5")]).unwrap();
    let line = time(50, || async {
        sink.log("heavy", &filtered).await.unwrap();
    })
    .await;
    println!("log page 1 filtered by model (with total): {line}");

    let page1000 = LogQuery::parse([("limit", "50"), ("page", "1000")]).unwrap();
    let by_offset = sink.log("heavy", &page1000).await.unwrap();
    let line = time(20, || async {
        sink.log("heavy", &page1000).await.unwrap();
    })
    .await;
    println!("log page 1000 by offset: {line}");

    // The cursor of page 999's last row, as a client walking the pages would hold it.
    let (ts, id): (chrono::DateTime<chrono::Utc>, uuid::Uuid) = sqlx::query_as(
        "SELECT timestamp, id FROM activity_log WHERE user_id = 'heavy' \
         ORDER BY timestamp DESC, id DESC OFFSET 49949 LIMIT 1",
    )
    .fetch_one(sink.pool())
    .await
    .unwrap();
    let cursor = Cursor { timestamp: ts, id };
    let by_cursor_q = LogQuery {
        limit: 50,
        cursor: Some(cursor),
        ..LogQuery::default()
    };
    let by_cursor = sink.log("heavy", &by_cursor_q).await.unwrap();
    assert_eq!(by_cursor.logs, by_offset.logs, "the same page both ways");
    let line = time(50, || async {
        sink.log("heavy", &by_cursor_q).await.unwrap();
    })
    .await;
    println!("log page 1000 by cursor: {line}");
    sink.pool().close().await;
}
