//! `PostgresSink` against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; unreachable = failed, never skipped), one
//! database per test: migrations, prefixes and schemas, round trip, stats and pages equal to
//! the `MemorySink` reference, isolation, idempotency, retention, and faults — connections
//! killed mid-load, a poison record, shutdown.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tower_activity::query::{ActivityQuery, LogQuery, StatsQuery};
use tower_activity::sink::{PostgresSink, SqlSink, TableNames};
use tower_activity::{ActivitySink, ActivityWriter, StorageError, WriterConfig};
use uuid::Uuid;

use testkit::storage::postgres::TestDb;
use testkit::storage::{data, scenarios};

async fn sink(db: &TestDb) -> PostgresSink {
    PostgresSink::from_pool(db.pool(4).await, TableNames::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent_and_concurrent_starts_migrate_once() {
    let db = TestDb::create().await;
    let url = db.url();
    // Several instances starting together: the advisory lock serialises them.
    let starts = (0..4).map(|_| PostgresSink::connect(&url));
    let sinks: Vec<PostgresSink> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let sink = &sinks[0];
    sink.migrate().await.unwrap();
    sink.migrate().await.unwrap();
    let history: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, description FROM activity_migrations")
            .fetch_all(sink.pool())
            .await
            .unwrap();
    let mut versions: Vec<i64> = history.iter().map(|h| h.0).collect();
    versions.sort();
    assert_eq!(versions, [1, 2, 3], "every migration once");
    let app_history: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(sink.pool())
            .await
            .unwrap();
    assert_eq!(
        app_history, None,
        "the application's migration table is left alone"
    );

    let via_url = SqlSink::connect(&url).await.unwrap();
    assert!(matches!(via_url, SqlSink::Postgres(_)));
    via_url
        .write(&[data::record("u", data::day_ago(0, 1))])
        .await
        .unwrap();
    assert_eq!(sink.log("u", &LogQuery::default()).await.unwrap().total, 1);
}

#[tokio::test]
async fn prefixes_and_schemas_coexist_and_bad_names_are_refused() {
    let db = TestDb::create().await;
    let pool = db.pool(4).await;
    let a = PostgresSink::from_pool(pool.clone(), TableNames::new().with_prefix("a_").unwrap())
        .await
        .unwrap();
    let b = PostgresSink::from_pool(pool.clone(), TableNames::new().with_prefix("b_").unwrap())
        .await
        .unwrap();
    let names = TableNames::new()
        .with_schema("user")
        .unwrap()
        .with_prefix("a_")
        .unwrap();
    let in_schema = PostgresSink::from_pool(pool.clone(), names).await.unwrap();
    a.write(&[data::record("u", data::day_ago(0, 1))])
        .await
        .unwrap();
    for (sink, total) in [(&a, 1), (&b, 0), (&in_schema, 0)] {
        assert_eq!(
            sink.log("u", &LogQuery::default()).await.unwrap().total,
            total
        );
        let stats = sink.stats("u", &StatsQuery::default()).await.unwrap();
        assert_eq!(stats.total_requests, total);
    }
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%activity_migrations'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 3);
    let err = TableNames::new().with_schema("Robert'); DROP").unwrap_err();
    assert!(matches!(
        err,
        StorageError::InvalidName { what: "schema", .. }
    ));
    assert!(err.to_string().contains("Robert'); DROP"), "{err}");
}

#[tokio::test]
async fn every_field_survives_a_round_trip() {
    let db = TestDb::create().await;
    scenarios::round_trip(&sink(&db).await).await;
}

#[test]
fn stats_equal_the_reference_for_random_data() {
    testkit::storage::postgres::stats_match_for_random_data(|sink| sink);
}

#[tokio::test]
async fn log_pages_equal_the_reference() {
    let db = TestDb::create().await;
    scenarios::pagination(&sink(&db).await).await;
}

#[tokio::test]
async fn users_never_see_each_other() {
    let db = TestDb::create().await;
    scenarios::isolation(&sink(&db).await).await;
}

#[tokio::test]
async fn a_batch_written_twice_is_stored_and_counted_once() {
    let db = TestDb::create().await;
    scenarios::idempotency(&sink(&db).await).await;
}

#[tokio::test]
async fn retention_deletes_whole_days_with_their_rollup() {
    let db = TestDb::create().await;
    let sink = sink(&db).await;
    scenarios::retention(&sink, |days| sink.delete_older_than(days)).await;
}

#[tokio::test]
async fn a_poison_record_does_not_lose_its_batch() {
    let db = TestDb::create().await;
    let sink = sink(&db).await;
    // What PostgreSQL rejects for one row only: a constraint (23514, check_violation).
    sqlx::raw_sql(
        "ALTER TABLE activity_log ADD CONSTRAINT no_poison CHECK (endpoint <> '/poison')",
    )
    .execute(sink.pool())
    .await
    .unwrap();
    scenarios::poison(&sink).await;
}

#[tokio::test]
async fn a_write_waiting_on_a_lock_fails_transiently_and_leaves_the_pool_as_it_was() {
    let db = TestDb::create().await;
    let sink = sink(&db).await;
    // Someone holds the table: the batch gives up after lock_timeout (5 s) instead of
    // waiting for ever, as a transient error the writer retries.
    let mut other = db.pool(1).await.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE activity_log IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *other)
        .await
        .unwrap();
    let record = data::record("u", chrono::Utc::now());
    match sink.write(std::slice::from_ref(&record)).await {
        Err(tower_activity::SinkError::Transient(e)) => {
            assert!(e.to_string().contains("lock timeout"), "{e}")
        }
        other => panic!("expected a transient lock timeout, got {other:?}"),
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *other)
        .await
        .unwrap();
    sink.write(std::slice::from_ref(&record)).await.unwrap();
    // The timeouts were the transaction's own: the pool's sessions keep their defaults.
    let pool = sink.pool();
    for setting in ["statement_timeout", "lock_timeout"] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(value, "0", "{setting}");
    }
}

#[tokio::test]
async fn shutdown_drains() {
    let db = TestDb::create().await;
    scenarios::shutdown_drains(&sink(&db).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_load_lose_and_duplicate_nothing() {
    const RECORDS: usize = 20_000;
    let db = TestDb::create().await;
    let sink = sink(&db).await;
    // Partitions are made ahead, as in service: making one (a few catalog writes and file
    // syncs) can take longer than the 20 ms between kills on a busy disk.
    sink.create_partitions().await.unwrap();
    let config = WriterConfig::default()
        .with_batch_size(250)
        .with_batch_interval(Duration::from_millis(5))
        .with_retry_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(100));
    let writer = ActivityWriter::start(sink.clone(), config);

    let loading = Arc::new(AtomicBool::new(true));
    let killer = {
        let loading = Arc::clone(&loading);
        let mut admin = db.admin().await;
        let name = db.name.clone();
        tokio::spawn(async move {
            let (mut rounds, mut killed) = (0, 0);
            while loading.load(Ordering::Relaxed) {
                killed += sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM \
                     pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) AS k",
                )
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (rounds, killed)
        })
    };

    let mut sent = HashSet::new();
    for i in 0..RECORDS {
        let r = data::record(&format!("user{}", i % 7), data::day_ago(0, i as i64));
        sent.insert(r.id);
        assert!(writer.record(r), "the queue never fills");
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    writer.flush().await;
    loading.store(false, Ordering::Relaxed);
    let (rounds, killed) = killer.await.unwrap();
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    eprintln!("kill rounds {rounds}, connections killed {killed}, writer {stats:?}");
    assert!(killed > 0, "the test killed no connection");
    assert!(
        stats.retried > 0,
        "no write was interrupted: the test proved nothing"
    );
    assert_eq!(
        (stats.written, stats.failed),
        (RECORDS as u64, 0),
        "{stats:?}"
    );

    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM activity_log")
        .fetch_all(sink.pool())
        .await
        .unwrap();
    let stored: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(ids.len(), RECORDS, "no duplicate");
    assert_eq!(stored, sent, "every record, exactly once");
    let counted: i64 = sqlx::query_scalar("SELECT sum(requests)::int8 FROM activity_daily")
        .fetch_one(sink.pool())
        .await
        .unwrap();
    assert_eq!(
        counted, RECORDS as i64,
        "the rollup counted each record once"
    );
}

/// A database made by the first schema (version 1, one row in it) is upgraded in place: the
/// old row reads back with the new fields null, and new rows keep every field.
#[tokio::test]
async fn a_database_of_the_first_schema_is_upgraded_in_place() {
    let db = TestDb::create().await;
    let pool = db.pool(2).await;
    let v1 = include_str!("../migrations/postgres/0001_activity_log.sql")
        .replace("{log}", "activity_log")
        .replace("{daily}", "activity_daily")
        .replace("{prefix}", "");
    sqlx::raw_sql(&v1).execute(&pool).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE activity_migrations (version BIGINT PRIMARY KEY, \
         description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); \
         INSERT INTO activity_migrations (version, description) \
         VALUES (1, 'activity_log, activity_daily and their indexes')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut old = data::record("up", data::day_ago(0, 5));
    old.endpoint = "/v1/chat/completions".into();
    old.api = tower_activity::LlmApi::OpenAiChat;
    old.usage_source = tower_activity::UsageSource::Reported;
    old.cost_usd = Some("0.000125".parse().unwrap());
    sqlx::query(
        "INSERT INTO activity_log (id, kind, timestamp, user_id, app, endpoint, api, stream, \
         outcome, usage_source, cost_usd, metadata) \
         VALUES ($1, 'request', $2, 'up', 'API', $3, 'openai.chat', false, 'ok', 'reported', \
         0.000125, '{}')",
    )
    .bind(old.id)
    .bind(old.timestamp)
    .bind(&old.endpoint)
    .execute(&pool)
    .await
    .unwrap();

    let sink = PostgresSink::from_pool(pool, TableNames::new())
        .await
        .unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM activity_migrations ORDER BY version")
            .fetch_all(sink.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3]);
    let page = sink.log("up", &LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, [old.clone()], "the old row, new fields null");
    let full = data::full_record("up");
    sink.write(std::slice::from_ref(&full)).await.unwrap();
    let page = sink.log("up", &LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, [full, old], "a new row keeps every new field");
}
