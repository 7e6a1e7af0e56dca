//! `PostgresSink`'s time partitions against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; unreachable = failed, never skipped), one
//! database per test: partitions made ahead and for old records, retention by dropping them,
//! another process's retention under a writer, and the in-place migration of a populated
//! unpartitioned table.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use sqlx::PgPool;
use tower_activity::query::{ActivityQuery, LogQuery, StatsQuery};
use tower_activity::sink::{PartitionPeriod, PostgresSink, TableNames};
use tower_activity::{ActivitySink, SinkError};

use testkit::storage::postgres::TestDb;
use testkit::storage::{data, scenarios};

/// The partitions of `table` (unqualified names) with their bounds, in name order.
async fn partitions(pool: &PgPool, table: &str) -> Vec<(String, String)> {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("SET TimeZone = 'UTC'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass \
         ORDER BY c.relname",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .unwrap()
}

fn names(parts: &[(String, String)]) -> Vec<&str> {
    parts.iter().map(|(n, _)| n.as_str()).collect()
}

fn month_suffix(d: NaiveDate) -> String {
    d.format("y%Ym%m").to_string()
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

#[tokio::test]
async fn the_table_is_partitioned_and_partitions_are_made_ahead() {
    let db = TestDb::create().await;
    let pool = db.pool(4).await;
    let monthly = PostgresSink::from_pool(pool.clone(), TableNames::new())
        .await
        .unwrap();
    let kind: String =
        sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE relname = 'activity_log'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "p", "activity_log is a partitioned table");
    assert!(
        partitions(&pool, "activity_log").await.is_empty(),
        "none yet"
    );

    monthly.create_partitions().await.unwrap();
    let this_month = Utc::now().date_naive().with_day(1).unwrap();
    let want: Vec<String> = (0..=2)
        .map(|m| {
            let start = this_month.checked_add_months(Months::new(m)).unwrap();
            format!("activity_log_{}", month_suffix(start))
        })
        .collect();
    let parts = partitions(&pool, "activity_log").await;
    assert_eq!(names(&parts), want, "this month and the 2 ahead");
    assert!(
        parts[0]
            .1
            .contains(&format!("FROM ('{this_month} 00:00:00+00')")),
        "{parts:?}"
    );
    monthly.create_partitions().await.unwrap();
    assert_eq!(
        partitions(&pool, "activity_log").await.len(),
        3,
        "idempotent"
    );

    // A record older than every partition gets its month on the way in.
    let old = data::record("u", at(2025, 3, 14, 12));
    monthly.write(std::slice::from_ref(&old)).await.unwrap();
    let parts = partitions(&pool, "activity_log").await;
    assert_eq!(names(&parts)[0], "activity_log_y2025m03");
    let page = monthly.log("u", &LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, [old]);

    // Days, in a sink of its own (another prefix): today and the 3 days ahead.
    let daily = PostgresSink::from_pool(pool.clone(), TableNames::new().with_prefix("d_").unwrap())
        .await
        .unwrap()
        .with_partitions(PartitionPeriod::Day, 3);
    daily
        .write(&[data::record("u", data::day_ago(0, 1))])
        .await
        .unwrap();
    let today = Utc::now().date_naive();
    let want: Vec<String> = (0..=3)
        .map(|d| {
            let day = today + chrono::Days::new(d);
            format!("d_activity_log_{}", day.format("y%Ym%md%d"))
        })
        .collect();
    assert_eq!(names(&partitions(&pool, "d_activity_log").await), want);
}

#[tokio::test]
async fn retention_drops_whole_partitions_and_deletes_only_in_the_one_it_cuts() {
    let db = TestDb::create().await;
    let pool = db.pool(4).await;
    let sink = PostgresSink::from_pool(pool.clone(), TableNames::new())
        .await
        .unwrap();
    let rows = [
        data::record("r", at(2025, 1, 15, 10)),
        data::record("r", at(2025, 1, 31, 23)),
        data::record("r", at(2025, 2, 10, 0)),
        data::record("r", at(2025, 3, 5, 8)),
    ];
    sink.write(&rows).await.unwrap();
    let before: Vec<String> = names(&partitions(&pool, "activity_log").await)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(
        before.contains(&"activity_log_y2025m01".to_owned()),
        "{before:?}"
    );

    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    assert_eq!(
        sink.delete_before(day(2025, 3, 1)).await.unwrap(),
        3,
        "January (2 records) and February (1) dropped, counted from the rollup"
    );
    let after = partitions(&pool, "activity_log").await;
    assert!(
        !names(&after).contains(&"activity_log_y2025m01")
            && !names(&after).contains(&"activity_log_y2025m02"),
        "{after:?}"
    );
    assert!(names(&after).contains(&"activity_log_y2025m03"));
    assert_eq!(sink.delete_before(day(2025, 3, 5)).await.unwrap(), 0);
    assert_eq!(
        sink.delete_before(day(2025, 3, 6)).await.unwrap(),
        1,
        "March reaches past the cutoff: its old row is deleted, the partition kept"
    );
    assert!(names(&partitions(&pool, "activity_log").await).contains(&"activity_log_y2025m03"));
    let all = StatsQuery::between(day(2024, 1, 1), day(2025, 12, 31)).unwrap();
    assert_eq!(sink.stats("r", &all).await.unwrap().total_requests, 0);

    // The shared retention scenario (days 0 … 45), on day partitions.
    let daily = PostgresSink::from_pool(pool.clone(), TableNames::new().with_prefix("d_").unwrap())
        .await
        .unwrap()
        .with_partitions(PartitionPeriod::Day, 1);
    scenarios::retention(&daily, |days| daily.delete_older_than(days)).await;
    let left = partitions(&pool, "d_activity_log").await;
    let cutoff = Utc::now().date_naive() - chrono::Days::new(29);
    for (name, bound) in &left {
        let start = &name["d_activity_log_".len()..];
        let start = NaiveDate::parse_from_str(start, "y%Ym%md%d").unwrap();
        assert!(
            start >= cutoff,
            "{name} ({bound}) is older than the kept days"
        );
    }
}

#[tokio::test]
async fn a_partition_dropped_by_another_process_is_made_again_on_retry() {
    let db = TestDb::create().await;
    let pool = db.pool(4).await;
    let writer = PostgresSink::from_pool(pool.clone(), TableNames::new())
        .await
        .unwrap();
    let janitor = PostgresSink::from_pool(pool.clone(), TableNames::new())
        .await
        .unwrap();
    let jan = |d| data::record("x", at(2025, 1, d, 12));
    writer.write(&[jan(1)]).await.unwrap();
    janitor
        .delete_before(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap())
        .await
        .unwrap();
    // The writer still believes January has a partition: the insert finds none. Not the
    // batch's fault: transient, so the writer retries instead of dropping the records.
    let again = jan(2);
    match writer.write(std::slice::from_ref(&again)).await {
        Err(SinkError::Transient(e)) => assert!(e.to_string().contains("no partition"), "{e}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
    writer.write(std::slice::from_ref(&again)).await.unwrap();
    let page = writer.log("x", &LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, [again]);
}

/// The first two schemas, as a database made before partitioning has them.
async fn unpartitioned_schema(pool: &PgPool) {
    for sql in [
        include_str!("../migrations/postgres/0001_activity_log.sql"),
        include_str!("../migrations/postgres/0002_cost_details.sql"),
    ] {
        let sql = sql
            .replace("{log}", "activity_log")
            .replace("{daily}", "activity_daily")
            .replace("{prefix}", "");
        sqlx::raw_sql(&sql).execute(pool).await.unwrap();
    }
    sqlx::raw_sql(
        "CREATE TABLE activity_migrations (version BIGINT PRIMARY KEY, \
         description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); \
         INSERT INTO activity_migrations (version, description) VALUES (1, 'v1'), (2, 'v2')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Every row's text, in id order, hashed; and the count.
async fn fingerprint(pool: &PgPool) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') \
         FROM activity_log t",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_populated_unpartitioned_table_is_migrated_in_place() {
    let db = TestDb::create().await;
    let pool = db.pool(4).await;
    unpartitioned_schema(&pool).await;
    // 20,000 rows over the last 100 days, 10 users, through the old schema's own insert,
    // and the rollup they make.
    sqlx::raw_sql(
        "INSERT INTO activity_log (id, kind, timestamp, user_id, app, endpoint, api, model, \
           provider, stream, status_code, outcome, input_tokens, output_tokens, usage_source, \
           cost_usd, metadata, cost_details) \
         SELECT gen_random_uuid(), 'request', now() - (i * interval '432 seconds'), \
           'u' || (i % 10), 'API', '/v1/chat/completions', 'openai.chat', 'gpt-4o', 'OpenAI', \
           i % 2 = 0, 200, 'ok', i % 1000, i % 300, 'reported', (i % 977) * 0.000001, \
           jsonb_build_object('n', i), '{\"input\": \"0.1\"}' \
         FROM generate_series(1, 20000) AS i; \
         INSERT INTO activity_daily \
         SELECT user_id, (timestamp AT TIME ZONE 'UTC')::date, kind, model, provider, count(*), \
           sum(input_tokens), sum(output_tokens), sum(input_tokens + output_tokens), \
           sum(cost_usd) FROM activity_log GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before = fingerprint(&pool).await;
    assert_eq!(before.0, 20_000);

    let sink = PostgresSink::from_pool(pool.clone(), TableNames::new())
        .await
        .unwrap();
    assert_eq!(fingerprint(&pool).await, before, "the same rows, unchanged");
    let parts = partitions(&pool, "activity_log").await;
    let next_month = Utc::now()
        .date_naive()
        .with_day(1)
        .unwrap()
        .checked_add_months(Months::new(1))
        .unwrap();
    assert_eq!(
        parts,
        [(
            "activity_log_legacy".to_owned(),
            format!("FOR VALUES FROM (MINVALUE) TO ('{next_month} 00:00:00+00')")
        )],
        "the old table is the one partition, up to next month"
    );
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index \
         WHERE indrelid = 'activity_log_legacy'::regclass AND indisunique",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(keys.len(), 1, "one unique key, (id, timestamp): {keys:?}");
    assert!(keys[0].contains("(id, \"timestamp\")"), "{keys:?}");

    // Reads and writes as before; a retried old record is still skipped.
    let q = StatsQuery::parse([("days", "30")]).unwrap();
    let stats = sink.stats("u3", &q).await.unwrap();
    assert!(stats.total_requests > 0);
    let page = sink.log("u3", &LogQuery::default()).await.unwrap();
    assert_eq!(page.total, 2_000);
    let mut again = page.logs[0].clone();
    sink.write(std::slice::from_ref(&again)).await.unwrap();
    assert_eq!(
        sink.log("u3", &LogQuery::default()).await.unwrap().total,
        2_000
    );
    again.id = uuid::Uuid::now_v7();
    again.timestamp = Utc::now() + chrono::Days::new(45);
    sink.write(std::slice::from_ref(&again)).await.unwrap();
    assert_eq!(fingerprint(&pool).await.0, 20_001);
    assert!(
        partitions(&pool, "activity_log").await.len() > 1,
        "new months beside it"
    );

    // Retention deletes the old table's rows until its range is past the cutoff.
    let deleted = sink.delete_older_than(50).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM activity_log_legacy")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(deleted as i64, 20_000 - left);
    assert!(
        left > 9_000 && left < 11_000,
        "about half of 100 days: {left}"
    );
    let counted: i64 = sqlx::query_scalar("SELECT sum(requests)::int8 FROM activity_daily")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(counted, left + 1, "the rollup still matches the rows");
}
