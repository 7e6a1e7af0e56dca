//! `SqliteSink`: migrations, table prefixes, round trip, stats and pages equal to the
//! `MemorySink` reference, isolation, idempotency, retention, poison records, shutdown.

use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sqlx::Row;
use tower_activity::query::{ActivityQuery, LogQuery};
use tower_activity::sink::{SqlSink, SqliteSink, TableNames};
use tower_activity::{ActivitySink, ActivityWriter, StorageError, WriterConfig};

use testkit::storage::{data, scenarios};

/// A directory of its own, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("tower-activity-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn memory() -> SqliteSink {
    SqliteSink::in_memory().await.unwrap()
}

#[tokio::test]
async fn a_file_is_created_in_wal_mode_and_migrations_are_idempotent() {
    let dir = TempDir::new();
    let url = dir.url("activity.db");
    let sink = SqliteSink::connect(&url).await.unwrap();
    assert!(dir.0.join("activity.db").exists(), "created if missing");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(sink.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    sink.write(&[data::record("u", data::day_ago(0, 1))])
        .await
        .unwrap();

    sink.migrate().await.unwrap();
    sink.migrate().await.unwrap();
    drop(sink);
    let again = SqliteSink::connect(&url).await.unwrap();
    let history = sqlx::query("SELECT count(*), min(version) FROM activity_migrations")
        .fetch_one(again.pool())
        .await
        .unwrap();
    assert_eq!((history.get::<i64, _>(0), history.get::<i64, _>(1)), (2, 1));
    assert_eq!(
        again.log("u", &LogQuery::default()).await.unwrap().total,
        1,
        "data kept"
    );
    let via_url = SqlSink::connect(&url).await.unwrap();
    assert!(matches!(via_url, SqlSink::Sqlite(_)));
    assert_eq!(
        via_url.log("u", &LogQuery::default()).await.unwrap().total,
        1
    );
}

#[tokio::test]
async fn two_prefixes_share_a_file_without_seeing_each_other() {
    let dir = TempDir::new();
    let url = dir.url("shared.db");
    let a = SqliteSink::connect_with(&url, TableNames::new().with_prefix("a_").unwrap())
        .await
        .unwrap();
    let b = SqliteSink::connect_with(&url, TableNames::new().with_prefix("b_").unwrap())
        .await
        .unwrap();
    let plain = SqliteSink::connect(&url).await.unwrap();
    a.write(&[data::record("u", data::day_ago(0, 1))])
        .await
        .unwrap();
    assert_eq!(a.log("u", &LogQuery::default()).await.unwrap().total, 1);
    assert_eq!(b.log("u", &LogQuery::default()).await.unwrap().total, 0);
    assert_eq!(plain.log("u", &LogQuery::default()).await.unwrap().total, 0);
    for table in [
        "a_activity_migrations",
        "b_activity_migrations",
        "activity_migrations",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(a.pool())
            .await
            .unwrap();
        assert_eq!(n, 2, "{table}: every migration once");
    }
    let with_schema = TableNames::new().with_schema("s").unwrap();
    let err = SqliteSink::connect_with(&url, with_schema)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidName { what: "schema", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn every_field_survives_a_round_trip() {
    scenarios::round_trip(&memory().await).await;
}

#[test]
fn stats_equal_the_reference_for_random_data() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    runner
        .run(
            &prop::collection::vec(data::arb_record(), 0..80),
            |records| {
                rt.block_on(async { scenarios::stats_match(&memory().await, &records).await });
                Ok(())
            },
        )
        .unwrap();
}

/// The rollup rows arbitrary records make, computed here from the records themselves: per
/// user, UTC day, kind, model and provider, the requests, the input and output tokens (unknown
/// as 0), their sum, and the cost.
type DailyRow = (
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    rust_decimal::Decimal,
);

fn expected_daily(records: &[tower_activity::ActivityRecord]) -> Vec<DailyRow> {
    let mut rows = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for r in records.iter().filter(|r| seen.insert(r.id)) {
        let kind = match r.kind {
            tower_activity::RecordKind::Request => "request",
            tower_activity::RecordKind::Event => "event",
        };
        let key = (
            r.user_id.clone(),
            r.timestamp.date_naive().to_string(),
            kind.to_owned(),
            r.model.clone(),
            r.provider.as_deref().map(str::to_owned),
        );
        let (input, output) = (
            r.input_tokens.unwrap_or(0) as i64,
            r.output_tokens.unwrap_or(0) as i64,
        );
        let sums = rows
            .entry(key)
            .or_insert((0i64, 0i64, 0i64, 0i64, rust_decimal::Decimal::ZERO));
        sums.0 += 1;
        sums.1 += input;
        sums.2 += output;
        sums.3 += input + output;
        sums.4 += r.cost_usd.unwrap_or_default();
    }
    rows.into_iter()
        .map(|((u, d, k, m, p), (n, i, o, t, c))| (u, d, k, m, p, n, i, o, t, c))
        .collect()
}

/// Arbitrary records in batches of arbitrary sizes, some batches carrying a record already
/// stored and an id twice (which take the path that tells stored rows from new ones): the
/// table holds each record once, every user's rows read back as the reference's, and the
/// rollup table equals the sums of the records computed here.
#[test]
fn rows_and_rollup_equal_the_records_for_arbitrary_batches() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(data::arb_record(), 0..160),
        prop::collection::vec((1usize..100, prop::bool::weighted(0.3)), 1..8),
    );
    runner
        .run(&strategy, |(records, batches)| {
            rt.block_on(async {
                let sink = memory().await;
                let (mut start, mut i) = (0, 0);
                while start < records.len() {
                    let (size, repeat) = batches[i % batches.len()];
                    let end = (start + size).min(records.len());
                    let mut batch = records[start..end].to_vec();
                    if repeat {
                        batch.push(batch[0].clone());
                        if start > 0 {
                            batch.insert(0, records[start - 1].clone());
                        }
                    }
                    sink.write(&batch).await.unwrap();
                    (start, i) = (end, i + 1);
                }
                let ids: Vec<uuid::Uuid> =
                    sqlx::query_scalar("SELECT id FROM activity_log ORDER BY id")
                        .fetch_all(sink.pool())
                        .await
                        .unwrap();
                let mut want: Vec<uuid::Uuid> = records.iter().map(|r| r.id).collect();
                want.sort();
                want.dedup();
                assert_eq!(ids, want, "each record stored once");
                let memory = scenarios::reference(&records).await;
                let all = LogQuery {
                    limit: 1000,
                    ..LogQuery::default()
                };
                for user in ["alice", "bob", "carol"] {
                    let got = sink.log(user, &all).await.unwrap();
                    let want = memory.log(user, &all).await.unwrap();
                    assert_eq!(got, want, "the rows of {user}");
                }
                let daily: Vec<DailyRow> = sqlx::query(
                    "SELECT user_id, day, kind, model, provider, requests, input_tokens, \
                     output_tokens, total_tokens, cost_usd FROM activity_daily \
                     ORDER BY user_id, day, kind, model, provider",
                )
                .fetch_all(sink.pool())
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    (
                        row.get(0),
                        row.get(1),
                        row.get(2),
                        row.get(3),
                        row.get(4),
                        row.get(5),
                        row.get(6),
                        row.get(7),
                        row.get(8),
                        row.get::<&str, _>(9).parse().unwrap(),
                    )
                })
                .collect();
                assert_eq!(daily, expected_daily(&records), "the rollup");
            });
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn log_pages_equal_the_reference() {
    scenarios::pagination(&memory().await).await;
}

#[tokio::test]
async fn users_never_see_each_other() {
    scenarios::isolation(&memory().await).await;
}

#[tokio::test]
async fn a_batch_written_twice_is_stored_and_counted_once() {
    scenarios::idempotency(&memory().await).await;
}

/// Rows go 64 to an `INSERT` (then 32, 16 … for the rest): a batch of 200 spans four
/// statements of three sizes; records already stored and a new id given twice within one
/// statement are stored once and counted once in the rollup.
#[tokio::test]
async fn a_large_batch_with_stored_and_doubled_records_is_counted_once() {
    let sink = memory().await;
    let mut rows = data::log_rows("multi", 199);
    for (i, r) in rows.iter_mut().enumerate() {
        r.cost_usd = Some(rust_decimal::Decimal::new(i as i64 + 1, 9));
    }
    sink.write(&rows[70..100]).await.unwrap();
    let mut batch = rows.clone();
    batch.insert(5, rows[3].clone()); // 200 records; rows[3] twice in the first statement
    sink.write(&batch).await.unwrap();
    let page = sink.log("multi", &LogQuery::default()).await.unwrap();
    assert_eq!(page.total, 199);
    let q = tower_activity::query::StatsQuery::parse([("days", "7")]).unwrap();
    let stats = sink.stats("multi", &q).await.unwrap();
    let requests = rows
        .iter()
        .filter(|r| r.kind == tower_activity::RecordKind::Request)
        .count();
    assert_eq!(
        stats.total_requests, requests as u64,
        "each request counted once"
    );
    let expected = scenarios::reference(&rows).await;
    assert_eq!(stats, expected.stats("multi", &q).await.unwrap());
}

#[tokio::test]
async fn retention_deletes_whole_days_with_their_rollup() {
    let sink = memory().await;
    scenarios::retention(&sink, |days| sink.delete_older_than(days)).await;
}

#[tokio::test]
async fn a_poison_record_does_not_lose_its_batch() {
    let sink = memory().await;
    // SQLite cannot add a CHECK constraint to a table; a trigger rejects the same way
    // (SQLITE_CONSTRAINT_TRIGGER).
    sqlx::raw_sql(
        "CREATE TRIGGER poison BEFORE INSERT ON activity_log WHEN NEW.endpoint = '/poison' \
         BEGIN SELECT RAISE(ABORT, 'poison record'); END",
    )
    .execute(sink.pool())
    .await
    .unwrap();
    scenarios::poison(&sink).await;
}

#[tokio::test]
async fn shutdown_drains_into_a_file() {
    let dir = TempDir::new();
    let sink = SqliteSink::connect(&dir.url("drain.db")).await.unwrap();
    scenarios::shutdown_drains(&sink).await;
}

/// `close` returns only once every connection is closed, even right after the writer's last
/// batch, when sqlx is still handing its connection back to the pool from a spawned task (its
/// `Pool::close` alone left that one open in about half of such runs: the `-wal` file
/// stayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_closes_every_connection_right_after_the_last_batch() {
    let dir = TempDir::new();
    for round in 0..20 {
        let url = dir.url(&format!("close-{round}.db"));
        let sink = SqliteSink::connect(&url).await.unwrap();
        let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
        for record in data::log_rows("u", 10) {
            writer.record(record);
        }
        writer.flush().await;
        let query = LogQuery::parse([("limit", "1")]).unwrap();
        assert_eq!(sink.log("u", &query).await.unwrap().total, 10);
        writer.record(data::record("u", chrono::Utc::now()));
        let stats = writer.shutdown(Duration::from_secs(5)).await;
        assert_eq!(stats.written, 11);
        sink.close().await;
        assert_eq!(
            sink.pool().size(),
            0,
            "round {round}: a connection is still open"
        );
        let wal = PathBuf::from(format!("{}-wal", url.trim_start_matches("sqlite://")));
        assert!(!wal.exists(), "round {round}: {} is left", wal.display());
    }
}

/// A database made by the first schema (version 1, one row in it) is upgraded in place: the
/// old row reads back with the new fields null, and new rows keep every field.
#[tokio::test]
async fn a_database_of_the_first_schema_is_upgraded_in_place() {
    let dir = TempDir::new();
    let url = dir.url("v1.db");
    {
        let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        let v1 = include_str!("../migrations/sqlite/0001_activity_log.sql")
            .replace("{log}", "activity_log")
            .replace("{daily}", "activity_daily")
            .replace("{prefix}", "");
        sqlx::raw_sql(&v1).execute(&pool).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE activity_migrations (version INTEGER PRIMARY KEY, \
             description TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP); \
             INSERT INTO activity_migrations (version, description) \
             VALUES (1, 'activity_log, activity_daily and their indexes')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO activity_log (id, kind, timestamp, user_id, app, endpoint, api, \
             stream, outcome, usage_source, cost_usd, metadata) \
             VALUES (?1, 'request', ?2, 'up', 'API', '/v1/chat/completions', 'openai.chat', \
             0, 'ok', 'reported', '0.000125', '{}')",
        )
        .bind(uuid::Uuid::from_u128(7))
        .bind(data::day_ago(0, 5).timestamp_micros())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let mut old = data::record("up", data::day_ago(0, 5));
    old.id = uuid::Uuid::from_u128(7);
    old.endpoint = "/v1/chat/completions".into();
    old.api = tower_activity::LlmApi::OpenAiChat;
    old.usage_source = tower_activity::UsageSource::Reported;
    old.cost_usd = Some("0.000125".parse().unwrap());

    let sink = SqliteSink::connect(&url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM activity_migrations ORDER BY version")
            .fetch_all(sink.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    let page = sink.log("up", &LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, [old.clone()], "the old row, new fields null");
    let full = data::full_record("up");
    sink.write(std::slice::from_ref(&full)).await.unwrap();
    let page = sink.log("up", &LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, [full, old], "a new row keeps every new field");
}
