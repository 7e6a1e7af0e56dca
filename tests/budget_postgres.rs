//! The budget on PostgreSQL (`DATABASE_URL`, a database of its own per test): the store
//! contract, the concurrency properties through the real layers, several stores (processes)
//! sharing the counters, and leases.

use std::sync::Arc;

use rust_decimal::Decimal;
use testkit::budget::{contract, scenarios};
use testkit::storage::postgres::TestDb;
use tower_activity::budget::{
    Admission, BudgetStore, Check, CounterKey, Limits, Metric, PostgresBudgetStore, Usage, Verdict,
    Window,
};
use tower_activity::sink::TableNames;

/// A store on a pool of its own. Its timeout is far above any admission's: on a busy machine
/// 120 admissions queueing on one row lock take seconds, and these tests are about
/// exactness, not speed.
async fn store(db: &TestDb) -> PostgresBudgetStore {
    PostgresBudgetStore::from_pool(db.pool(16).await, TableNames::new())
        .await
        .expect("the budget tables are created")
        .with_timeout(std::time::Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_contract() {
    let db = TestDb::create().await;
    let s = store(&db).await;
    contract::all_or_nothing_then_settle(&s).await;
    contract::limits_and_credits(&s).await;
    contract::concurrent_admissions(Arc::new(s), 60, 25).await;
    contract::concurrent_across_counters(Arc::new(store(&db).await), 80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrating_twice_and_concurrently_is_harmless() {
    let db = TestDb::create().await;
    let pool = db.pool(8).await;
    let starts = (0..4).map(|_| PostgresBudgetStore::from_pool(pool.clone(), TableNames::new()));
    for s in futures_util::future::join_all(starts).await {
        s.expect("each start migrates or finds the tables");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_through_the_layers() {
    let db = TestDb::create().await;
    let s: Arc<dyn BudgetStore> = Arc::new(store(&db).await);
    let figures = [
        scenarios::exact_with_max_tokens(s.clone(), 40).await,
        scenarios::bounded_without_max_tokens(s.clone(), 30).await,
        scenarios::ledger_matches_log(s.clone(), 4, 25).await,
        scenarios::rollover(s).await,
    ];
    for f in figures {
        assert_eq!(f.ledger, f.log);
        println!("postgres: {f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_stores_share_one_cap_exactly() {
    // Four stores on their own pools are four processes as far as PostgreSQL can tell.
    let db = TestDb::create().await;
    let mut stores: Vec<Arc<dyn BudgetStore>> = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(store(&db).await));
    }
    contract::stores_share_one_cap(stores).await;
}

#[tokio::test]
async fn a_dead_processs_holds_are_released_after_its_lease() {
    let db = TestDb::create().await;
    let dead = store(&db).await;
    let alive = store(&db).await;
    let subject = format!("user:{}", testkit::budget::unique("lease"));
    let cap = Limits::none().with(Metric::Requests, Some(Decimal::ONE));
    let admission = || Admission {
        id: uuid::Uuid::now_v7(),
        checks: vec![Check {
            counter: CounterKey::at(subject.clone(), Window::Day, chrono::Utc::now()),
            estimate: Usage {
                requests: 1,
                ..Usage::ZERO
            },
            defaults: cap,
        }],
    };
    let held = admission();
    assert!(matches!(
        dead.admit(&held).await.unwrap(),
        Verdict::Admitted(_)
    ));
    assert!(matches!(
        alive.admit(&admission()).await.unwrap(),
        Verdict::Refused(_)
    ));

    // The dead process's lease runs out (instead of waiting for it, its expiry is moved).
    sqlx::query(
        "UPDATE budget_holders SET expires = now() - interval '1 second' WHERE holder = $1",
    )
    .bind(dead.holder())
    .execute(alive.pool())
    .await
    .unwrap();
    alive.maintain(chrono::Utc::now()).await.unwrap();
    let state = alive
        .counters(&[(held.checks[0].counter.clone(), cap)])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        state.reserved,
        Usage::ZERO,
        "released by the live process's housekeeping"
    );
    // The late settlement of the released hold adds its usage once and frees nothing twice.
    let after = dead
        .settle(
            &held,
            &Usage {
                requests: 1,
                ..Usage::ZERO
            },
        )
        .await
        .unwrap();
    assert_eq!(after[0].reserved, Usage::ZERO);
    assert_eq!(after[0].used.requests, 1);
}
