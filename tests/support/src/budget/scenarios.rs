//! The properties the budget keeps through the real layers, on any store: run by each
//! store's test file with a fresh store (or one shared with other tests: every scenario
//! uses subjects of its own).

use std::sync::Arc;

use futures_util::future::join_all;
use http::StatusCode;
use http_body_util::BodyExt;
use rust_decimal::Decimal;
use tower_activity::budget::{BudgetStore, CounterKey, Limits, Metric, Scope, Window};
use tower_activity::{Outcome, RecordKind};

use super::{Figures, Stack, TestClock, chat_request, cost, spend, unique};

/// Reads the `user:` counter of `window` containing `at`.
async fn counter(
    store: &Arc<dyn BudgetStore>,
    user: &str,
    window: Window,
    at: chrono::DateTime<chrono::Utc>,
) -> tower_activity::budget::CounterState {
    let key = CounterKey::at(format!("user:{user}"), window, at);
    store
        .counters(&[(key, Limits::none())])
        .await
        .expect("the store answers")
        .remove(0)
}

/// Sends `n` requests at once; returns how many were admitted (200) and refused (429/402).
async fn burst(
    stack: &Stack,
    user: &str,
    n: usize,
    max_tokens: Option<u64>,
    stream: bool,
) -> (usize, usize) {
    let answers =
        join_all((0..n).map(|_| stack.call(chat_request(user, max_tokens, stream)))).await;
    let ok = answers.iter().filter(|a| a.0 == StatusCode::OK).count();
    let refused = answers
        .iter()
        .filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS || a.0 == StatusCode::PAYMENT_REQUIRED)
        .count();
    assert_eq!(ok + refused, n, "every answer is a 200 or a refusal");
    (ok, refused)
}

/// With `max_tokens` stated, `n` concurrent requests never take a day's spend past its cap
/// (overshoot exactly 0) and never refuse a request that fit: every request costs exactly
/// its reservation, so exactly ⌊cap / cost⌋ are admitted.
pub async fn exact_with_max_tokens(store: Arc<dyn BudgetStore>, n: usize) -> Figures {
    let user = unique("exact");
    let each = cost(20);
    let cap = each * Decimal::from(10) + each / Decimal::TWO;
    let stack = Stack::new(store.clone(), |b| {
        b.limit(Scope::User, Window::Day, Metric::Spend, cap)
    });
    let (admitted, refused) = burst(&stack, &user, n, Some(20), false).await;
    stack.settle().await;
    assert_eq!(
        admitted,
        10.min(n),
        "exactly the requests that fit are admitted"
    );
    assert_eq!(refused, n - admitted);
    let day = counter(&store, &user, Window::Day, chrono::Utc::now()).await;
    let log = spend(&stack.requests(&user));
    assert_eq!(day.used.spend, each * Decimal::from(admitted as u64));
    assert_eq!(day.used.spend, log, "ledger == SUM(cost_usd)");
    assert_eq!(day.reserved, Default::default(), "nothing left reserved");
    assert!(day.used.spend <= cap);
    assert_eq!(
        stack.requests(&user).len(),
        admitted,
        "refusals never went upstream"
    );
    let events = stack.records(&user, RecordKind::Event);
    let named = |name: &str| events.iter().filter(|e| e.endpoint == name).count();
    assert_eq!(named("budget.refused"), refused, "one event per refusal");
    // 80 % of the cap was crossed once (by the 9th request), 100 % never.
    assert_eq!(named("budget.threshold"), 1);
    Figures {
        scenario: "max_tokens stated",
        requests: n,
        admitted,
        refused,
        limit: cap,
        overshoot: (day.used.spend - cap).max(Decimal::ZERO),
        ledger: day.used.spend,
        log,
    }
}

/// Without `max_tokens`, each request reserves the default output (8 tokens) but uses 24: a
/// day's spend may pass its cap by at most the excess of the requests in flight when it was
/// reached. Here every admitted stream is still open when the last request is admitted, so
/// the overshoot reaches the bound exactly: 6 in flight × (24 − 8 tokens of output).
pub async fn bounded_without_max_tokens(store: Arc<dyn BudgetStore>, n: usize) -> Figures {
    let user = unique("bound");
    let (reserved, actual) = (cost(8), cost(24));
    let cap = reserved * Decimal::from(6);
    let stack = Stack::new(store.clone(), |b| {
        b.limit(Scope::User, Window::Day, Metric::Spend, cap)
            .default_output_tokens(8)
    });
    // Every admission is decided before any stream ends (nothing is settled yet).
    let answers = join_all((0..n).map(|_| stack.send(chat_request(&user, None, true)))).await;
    let admitted = answers
        .iter()
        .filter(|a| a.status() == StatusCode::OK)
        .count();
    let refused = answers.len() - admitted;
    assert_eq!(admitted, 6.min(n), "exactly the reservations that fit");
    for answer in answers {
        answer.into_body().collect().await.expect("the body");
    }
    stack.settle().await;
    let day = counter(&store, &user, Window::Day, chrono::Utc::now()).await;
    let log = spend(&stack.requests(&user));
    assert_eq!(day.used.spend, log, "ledger == SUM(cost_usd)");
    assert_eq!(day.used.spend, actual * Decimal::from(admitted as u64));
    let overshoot = (day.used.spend - cap).max(Decimal::ZERO);
    let bound = (actual - reserved) * Decimal::from(admitted as u64);
    assert!(
        overshoot <= bound,
        "overshoot {overshoot} within the bound {bound}"
    );
    assert_eq!(
        overshoot, bound,
        "all six were in flight: the bound is reached"
    );
    Figures {
        scenario: "no max_tokens (bound: in-flight × excess)",
        requests: n,
        admitted,
        refused,
        limit: cap,
        overshoot,
        ledger: day.used.spend,
        log,
    }
}

/// For every user, the ledger's settled spend, tokens and requests equal their activity log
/// exactly, after a mix of JSON, streams, upstream errors and client cancels, concurrently.
pub async fn ledger_matches_log(store: Arc<dyn BudgetStore>, users: usize, each: usize) -> Figures {
    let names: Vec<String> = (0..users).map(|i| unique(&format!("mix{i}"))).collect();
    let stack = Stack::new(store.clone(), |b| {
        b.credits(Scope::User).track(Scope::User, Window::Day)
    });
    for user in &names {
        super::grant(&*store, user, Decimal::from(10)).await;
    }
    let mut calls = Vec::new();
    for user in &names {
        for i in 0..each {
            let stack = &stack;
            calls.push(async move {
                match i % 5 {
                    0 => drop(stack.call(chat_request(user, None, false)).await),
                    1 => drop(stack.call(chat_request(user, Some(7), true)).await),
                    2 => {
                        let req = super::chat(user)
                            .header("x-fake", "error")
                            .body(super::chat_body(None, false))
                            .unwrap();
                        drop(stack.call(req).await)
                    }
                    3 => {
                        // The client reads two events of the stream, then goes away.
                        let mut body = stack.send(chat_request(user, None, true)).await.into_body();
                        for _ in 0..2 {
                            body.frame().await.expect("a frame").expect("no error");
                        }
                    }
                    _ => drop(stack.call(chat_request(user, Some(3), false)).await),
                }
            });
        }
    }
    join_all(calls).await;
    stack.settle().await;
    let (mut ledger, mut log) = (Decimal::ZERO, Decimal::ZERO);
    for user in &names {
        let records = stack.requests(user);
        assert_eq!(records.len(), each, "one record per request");
        let outcomes: Vec<Outcome> = records.iter().map(|r| r.outcome).collect();
        for want in [Outcome::Ok, Outcome::Error, Outcome::Cancelled] {
            assert!(outcomes.contains(&want), "{want:?} among {outcomes:?}");
        }
        let tokens: u64 = records
            .iter()
            .map(|r| r.input_tokens.unwrap_or(0) + r.output_tokens.unwrap_or(0))
            .sum();
        for window in [Window::Total, Window::Day] {
            let c = counter(&store, user, window, chrono::Utc::now()).await;
            assert_eq!(c.used.spend, spend(&records), "{window} spend of {user}");
            assert_eq!(c.used.tokens, tokens, "{window} tokens of {user}");
            assert_eq!(c.used.requests, each as u64, "{window} requests of {user}");
            assert_eq!(c.reserved, Default::default(), "nothing left reserved");
        }
        ledger += counter(&store, user, Window::Total, chrono::Utc::now())
            .await
            .used
            .spend;
        log += spend(&records);
    }
    Figures {
        scenario: "mixed JSON/streams/errors/cancels",
        requests: users * each,
        admitted: users * each,
        refused: 0,
        limit: Decimal::from(10 * users as u64),
        overshoot: Decimal::ZERO,
        ledger,
        log,
    }
}

/// A day rolls over while requests are in flight: those admitted before midnight settle in
/// the old day, those after in the new one; nothing is lost or counted twice.
pub async fn rollover(store: Arc<dyn BudgetStore>) -> Figures {
    let user = unique("roll");
    let clock = TestClock::at("2031-05-06T23:59:59Z");
    let stack = {
        let clock = clock.clone();
        Stack::new(store.clone(), move |b| {
            b.track(Scope::User, Window::Day)
                .credits(Scope::User)
                .clock(move || clock.now())
        })
    };
    // Before midnight: five streams admitted, their bodies not read yet.
    let before = join_all((0..5).map(|_| stack.send(chat_request(&user, Some(5), true)))).await;
    assert!(before.iter().all(|a| a.status() == StatusCode::OK));
    clock.set("2031-05-07T00:00:00Z");
    let after = join_all((0..5).map(|_| stack.call(chat_request(&user, Some(9), false)))).await;
    assert!(after.iter().all(|a| a.0 == StatusCode::OK));
    // The old day's requests end now, after midnight.
    for answer in before {
        answer.into_body().collect().await.expect("the stream");
    }
    stack.settle().await;
    let old = counter(
        &store,
        &user,
        Window::Day,
        "2031-05-06T12:00:00Z".parse().unwrap(),
    )
    .await;
    let new = counter(
        &store,
        &user,
        Window::Day,
        "2031-05-07T12:00:00Z".parse().unwrap(),
    )
    .await;
    let total = counter(&store, &user, Window::Total, clock.now()).await;
    assert_eq!(
        old.used.spend,
        cost(5) * Decimal::from(5),
        "the old day keeps its requests"
    );
    assert_eq!(
        new.used.spend,
        cost(9) * Decimal::from(5),
        "the new day has only its own"
    );
    assert_eq!((old.used.requests, new.used.requests), (5, 5));
    let log = spend(&stack.requests(&user));
    assert_eq!(
        old.used.spend + new.used.spend,
        log,
        "nothing lost or counted twice"
    );
    assert_eq!(total.used.spend, log);
    Figures {
        scenario: "day rollover mid-load",
        requests: 10,
        admitted: 10,
        refused: 0,
        limit: Decimal::ZERO,
        overshoot: Decimal::ZERO,
        ledger: old.used.spend + new.used.spend,
        log,
    }
}
