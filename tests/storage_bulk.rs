//! `PostgresSink`'s bulk path (`COPY` straight into the log, the rollup added up by the sink)
//! against a real PostgreSQL (`DATABASE_URL`; unreachable = failed, never skipped): the same
//! rows and rollup as the `UNNEST` statement, byte for byte; duplicates and inexact sums
//! falling back to it; the shared scenarios through `COPY`.

use std::str::FromStr;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rust_decimal::Decimal;
use tower_activity::query::{ActivityQuery, LogQuery, StatsQuery};
use tower_activity::sink::{PostgresSink, TableNames};
use tower_activity::{ActivityRecord, ActivitySink};

use testkit::storage::postgres::TestDb;
use testkit::storage::{data, scenarios};

async fn sink(db: &TestDb) -> PostgresSink {
    PostgresSink::from_pool(db.pool(4).await, TableNames::new())
        .await
        .unwrap()
}

/// A sink whose every batch takes the bulk path (`COPY` into the log).
async fn copy_sink(db: &TestDb) -> PostgresSink {
    sink(db).await.with_copy_threshold(1)
}

#[tokio::test]
async fn copy_path_every_field_survives_a_round_trip() {
    let db = TestDb::create().await;
    scenarios::round_trip(&copy_sink(&db).await).await;
}

#[tokio::test]
async fn copy_path_a_batch_written_twice_is_stored_and_counted_once() {
    let db = TestDb::create().await;
    scenarios::idempotency(&copy_sink(&db).await).await;
}

#[tokio::test]
async fn copy_path_log_pages_and_isolation_equal_the_reference() {
    let db = TestDb::create().await;
    let sink = copy_sink(&db).await;
    scenarios::pagination(&sink).await;
    scenarios::isolation(&sink).await;
}

#[test]
fn copy_path_stats_equal_the_reference_for_random_data() {
    testkit::storage::postgres::stats_match_for_random_data(|sink| sink.with_copy_threshold(1));
}

#[tokio::test]
async fn copy_path_a_poison_record_does_not_lose_its_batch() {
    let db = TestDb::create().await;
    let sink = copy_sink(&db).await;
    sqlx::raw_sql(
        "ALTER TABLE activity_log ADD CONSTRAINT no_poison CHECK (endpoint <> '/poison')",
    )
    .execute(sink.pool())
    .await
    .unwrap();
    scenarios::poison(&sink).await;
}

/// Every row of `table` as text, ordered: what a byte-for-byte comparison of two tables needs.
async fn rows_as_text(sink: &PostgresSink, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY 1"))
        .fetch_all(sink.pool())
        .await
        .unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Records whose values the binary encoding could bend: costs of every scale and sign
/// (a zero with decimals, the largest and the smallest a `Decimal` holds, each alone in its
/// rollup row), text with NUL and non-ASCII characters, every field set, every field empty.
fn awkward_records() -> Vec<ActivityRecord> {
    let costs = [
        "0",
        "0.000",
        "-1.5",
        "0.0000000000000000000000000001",
        "79228162514264337593543950335",
        "12345.6789",
        "1.50",
        "0.000000007",
    ];
    let mut records: Vec<_> = costs
        .iter()
        .enumerate()
        .map(|(i, cost)| {
            let mut r = data::record(&format!("cost{i}"), data::day_ago(0, i as i64));
            r.cost_usd = Some(dec(cost));
            r.model = Some("m\0ü".into());
            r.metadata
                .insert("k\0".into(), serde_json::json!(["ü", "\0", {"n": 1.5}]));
            r
        })
        .collect();
    records.push(data::full_record("full"));
    records.push(data::empty_record("empty"));
    records
}

/// The two paths store the same rows and the same rollup, compared as PostgreSQL prints them.
#[tokio::test]
async fn copy_and_unnest_store_the_same_rows_and_rollup() {
    let db = TestDb::create().await;
    let pool = db.pool(2).await;
    let path = |prefix: &str, threshold: usize| {
        let names = TableNames::new().with_prefix(prefix).unwrap();
        let pool = pool.clone();
        async move {
            PostgresSink::from_pool(pool, names)
                .await
                .unwrap()
                .with_copy_threshold(threshold)
        }
    };
    let (copy, unnest) = (path("c_", 1).await, path("u_", usize::MAX).await);
    let mut records = awkward_records();
    let mut runner = TestRunner::deterministic();
    let random = prop::collection::vec(data::arb_record(), 300);
    records.extend(random.new_tree(&mut runner).unwrap().current());
    for sink in [&copy, &unnest] {
        sink.write(&records).await.unwrap();
        sink.write(&records[..5]).await.unwrap(); // stored already: counted once
    }
    for table in ["activity_log", "activity_daily"] {
        let (c, u) = (
            rows_as_text(&copy, &format!("c_{table}")).await,
            rows_as_text(&unnest, &format!("u_{table}")).await,
        );
        assert_eq!(c.len(), u.len(), "{table}");
        for (c, u) in c.iter().zip(&u) {
            assert_eq!(c, u, "{table}: the first row that differs");
        }
    }
    let costs: Vec<String> = sqlx::query_scalar(
        "SELECT cost_usd::text FROM c_activity_log WHERE user_id LIKE 'cost%' ORDER BY user_id",
    )
    .fetch_all(copy.pool())
    .await
    .unwrap();
    assert_eq!(
        costs,
        [
            "0",
            "0.000",
            "-1.5",
            "0.0000000000000000000000000001",
            "79228162514264337593543950335",
            "12345.6789",
            "1.50",
            "0.000000007"
        ],
        "every cost as given, its scale kept"
    );
}

/// A rollup sum a `Decimal` cannot hold exactly is summed by PostgreSQL: the batch goes
/// through the `UNNEST` statement and the day's cost is exact.
#[tokio::test]
async fn a_sum_beyond_decimal_precision_is_added_in_numeric() {
    let db = TestDb::create().await;
    let sink = sink(&db).await.with_copy_threshold(1);
    let mut rows = vec![
        data::record("big", data::day_ago(0, 1)),
        data::record("big", data::day_ago(0, 2)),
    ];
    rows[0].cost_usd = Some(dec("7922816251426433759354395033.5"));
    rows[1].cost_usd = Some(dec("0.05"));
    sink.write(&rows).await.unwrap();
    let (requests, cost): (i64, String) =
        sqlx::query_as("SELECT requests, cost_usd::text FROM activity_daily WHERE user_id = 'big'")
            .fetch_one(sink.pool())
            .await
            .unwrap();
    assert_eq!(
        (requests, cost.as_str()),
        (2, "7922816251426433759354395033.55")
    );
}

/// Large batches (the default threshold sends them through `COPY`) that overlap what is
/// stored and repeat ids within themselves, then fresh ones: one row per id, and the rollup
/// equals the reference's, whichever path each batch took (a `COPY` rolled back for its
/// duplicates, the `UNNEST` batches after it, `COPY` again).
#[tokio::test]
async fn large_overlapping_batches_keep_one_row_per_id_and_an_exact_rollup() {
    let db = TestDb::create().await;
    let sink = PostgresSink::from_pool(db.pool(1).await, TableNames::new())
        .await
        .unwrap();
    let users = ["alice", "bob", "carol"];
    let rows: Vec<_> = (0..9_000)
        .map(|i| {
            let mut r = data::record(users[i % 3], data::day_ago(i as u64 % 4, i as i64));
            r.cost_usd = Some(Decimal::new(i as i64 * 7 + 1, 10));
            r.input_tokens = Some(i as u64);
            r
        })
        .collect();
    sink.write(&rows[..1_200]).await.unwrap(); // COPY
    sink.write(&rows[1_000..1_100]).await.unwrap(); // UNNEST, all stored already
    let repeated = [&rows[600..3_000], &rows[2_500..3_000]].concat();
    sink.write(&repeated).await.unwrap(); // COPY fails: 600 stored, 500 twice in the batch
    for fresh in rows[3_000..].chunks(600) {
        sink.write(fresh).await.unwrap(); // 8 through UNNEST, then COPY again
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM activity_log")
        .fetch_one(sink.pool())
        .await
        .unwrap();
    assert_eq!(count, 9_000);
    let memory = scenarios::reference(&rows).await;
    let q = StatsQuery::parse([("days", "7")]).unwrap();
    for user in users {
        assert_eq!(
            sink.stats(user, &q).await.unwrap(),
            memory.stats(user, &q).await.unwrap(),
            "{user}"
        );
    }
    let page = sink.log("alice", &LogQuery::default()).await.unwrap();
    assert_eq!(page.total, 3_000);
}
