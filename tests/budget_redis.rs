//! The budget on Redis (`REDIS_URL`, a key prefix of its own per test): the store contract,
//! the concurrency properties through the real layers, several stores (processes) sharing the
//! counters, and leases.

use std::sync::Arc;

use rust_decimal::Decimal;
use testkit::budget::redis::TestPrefix;
use testkit::budget::{contract, scenarios};
use tower_activity::budget::{
    Admission, BudgetStore, Check, CounterKey, Limits, Metric, Usage, Verdict, Window,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_contract() {
    let space = TestPrefix::new();
    let s = space.store().await;
    contract::all_or_nothing_then_settle(&s).await;
    contract::limits_and_credits(&s).await;
    contract::concurrent_admissions(Arc::new(s.clone()), 60, 25).await;
    contract::concurrent_across_counters(Arc::new(s), 80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_through_the_layers() {
    let space = TestPrefix::new();
    let s: Arc<dyn BudgetStore> = Arc::new(space.store().await);
    let figures = [
        scenarios::exact_with_max_tokens(s.clone(), 40).await,
        scenarios::bounded_without_max_tokens(s.clone(), 30).await,
        scenarios::ledger_matches_log(s.clone(), 4, 25).await,
        scenarios::rollover(s).await,
    ];
    for f in figures {
        assert_eq!(f.ledger, f.log);
        println!("redis: {f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_stores_share_one_cap_exactly() {
    let space = TestPrefix::new();
    let mut stores: Vec<Arc<dyn BudgetStore>> = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(space.store().await));
    }
    contract::stores_share_one_cap(stores).await;
}

#[tokio::test]
async fn a_dead_processs_holds_are_released_after_its_lease() {
    let space = TestPrefix::new();
    let dead = space.store().await;
    let alive = space.store().await;
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
    let mut conn = space.connection().await;
    redis::cmd("ZADD")
        .arg(format!("{}holders", space.prefix))
        .arg(0)
        .arg(dead.holder().simple().to_string())
        .query_async::<i64>(&mut conn)
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
    assert_eq!(after[0].reserved, Usage::ZERO, "nothing freed twice");
    assert_eq!(after[0].used.requests, 1);
}

#[tokio::test]
async fn counters_expire_after_the_next_window_and_balances_never() {
    let space = TestPrefix::new();
    let s = space.store().await;
    let subject = format!("user:{}", testkit::budget::unique("ttl"));
    let checks: Vec<Check> = [Window::Minute, Window::Total]
        .into_iter()
        .map(|w| Check {
            counter: CounterKey::at(subject.clone(), w, chrono::Utc::now()),
            estimate: Usage::ZERO,
            defaults: Limits::none(),
        })
        .collect();
    let a = Admission {
        id: uuid::Uuid::now_v7(),
        checks,
    };
    assert!(matches!(s.admit(&a).await.unwrap(), Verdict::Admitted(_)));
    let mut conn = space.connection().await;
    let ttl = |window: &str, start: i64| {
        let key = format!("{}c:{window}:{start}:{subject}", space.prefix);
        redis::cmd("TTL").arg(key).clone()
    };
    let minute: i64 = ttl("minute", a.checks[0].counter.start.timestamp())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (60..=120).contains(&minute),
        "a minute counter lives into the next minute: {minute}"
    );
    let total: i64 = ttl("total", 0).query_async(&mut conn).await.unwrap();
    assert_eq!(total, -1, "a balance has no expiry");
}
