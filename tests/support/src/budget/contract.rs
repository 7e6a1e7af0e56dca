//! The [`BudgetStore`] contract, checked on each store directly (no layers).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use rust_decimal::Decimal;
use tower_activity::budget::{
    Admission, BudgetError, BudgetStore, Check, CounterKey, Limits, Metric, Usage, Verdict, Window,
};
use uuid::Uuid;

use super::unique;

fn now() -> DateTime<Utc> {
    "2032-03-04T05:06:07Z".parse().unwrap()
}

fn usage(spend: &str, tokens: u64) -> Usage {
    Usage {
        spend: Decimal::from_str_exact(spend).unwrap(),
        tokens,
        requests: 1,
    }
}

fn check(subject: &str, window: Window, estimate: Usage, defaults: Limits) -> Check {
    Check {
        counter: CounterKey::at(subject, window, now()),
        estimate,
        defaults,
    }
}

fn admission(checks: Vec<Check>) -> Admission {
    Admission {
        id: Uuid::now_v7(),
        checks,
    }
}

async fn state(store: &dyn BudgetStore, c: &Check) -> tower_activity::budget::CounterState {
    store
        .counters(&[(c.counter.clone(), c.defaults)])
        .await
        .unwrap()
        .remove(0)
}

/// All checks are reserved or none; settlement moves the reservation into `used`; exact
/// money with many decimal places.
pub async fn all_or_nothing_then_settle(store: &dyn BudgetStore) {
    let user = format!("user:{}", unique("c"));
    let model = format!("model:{}", unique("m"));
    let spend_cap = Limits::none().with(
        Metric::Spend,
        Some(Decimal::from_str_exact("0.0000000000001").unwrap() * Decimal::from(10)),
    );
    let roomy = Limits::none().with(Metric::Tokens, Some(Decimal::from(1000)));
    // 1e-13 × 10 = 1e-12: the second check needs 2e-12 and fails, so nothing is reserved.
    let est = usage("0.000000000002", 10);
    let a = admission(vec![
        check(&user, Window::Day, est, roomy),
        check(&model, Window::Month, est, spend_cap),
    ]);
    let Verdict::Refused(states) = store.admit(&a).await.unwrap() else {
        panic!("the model's cap cannot hold the estimate")
    };
    assert_eq!(states.len(), 2);
    assert_eq!(
        states[1].limits, spend_cap,
        "the state the decision was made on"
    );
    assert_eq!(
        state(store, &a.checks[0]).await.reserved,
        Usage::ZERO,
        "nothing reserved"
    );

    let small = usage("0.0000000000003", 7);
    let a = admission(vec![
        check(&user, Window::Day, small, roomy),
        check(&model, Window::Month, small, spend_cap),
    ]);
    let Verdict::Admitted(states) = store.admit(&a).await.unwrap() else {
        panic!("it fits")
    };
    assert_eq!(states[0].reserved, small);
    assert_eq!(
        states[1].remaining(Metric::Spend),
        Some(Decimal::from_str_exact("0.0000000000007").unwrap())
    );
    let used = usage("0.0000000000001234", 5);
    let after = store.settle(&a, &used).await.unwrap();
    for s in &after {
        assert_eq!(s.used, used, "{:?}", s.counter);
        assert_eq!(s.reserved, Usage::ZERO);
    }
    assert_eq!(after[0].limits, roomy, "defaults apply without an override");
}

/// Overrides replace defaults per subject; `None` removes one; a top-up adds exactly; bad
/// caps are refused with the metric and the value.
pub async fn limits_and_credits(store: &dyn BudgetStore) {
    let user = format!("user:{}", unique("l"));
    let defaults = Limits::none()
        .with(Metric::Requests, Some(Decimal::from(5)))
        .with(Metric::Spend, Some(Decimal::ONE));
    let c = check(&user, Window::Day, Usage::ZERO, defaults);
    assert_eq!(state(store, &c).await.limits, defaults);
    store
        .set_limit(&user, Window::Day, Metric::Requests, Some(Decimal::from(2)))
        .await
        .unwrap();
    let s = state(store, &c).await;
    assert_eq!(s.limits.requests, Some(Decimal::from(2)));
    assert_eq!(
        s.limits.spend,
        Some(Decimal::ONE),
        "other metrics keep their default"
    );
    store
        .set_limit(&user, Window::Day, Metric::Requests, None)
        .await
        .unwrap();
    assert_eq!(state(store, &c).await.limits, defaults);

    let grant = Decimal::from_str_exact("1.000000000000000001").unwrap();
    assert_eq!(
        store
            .raise_limit(&user, Window::Total, Metric::Spend, grant)
            .await
            .unwrap(),
        grant
    );
    let topped = store
        .raise_limit(
            &user,
            Window::Total,
            Metric::Spend,
            Decimal::from_str_exact("5.00").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        topped,
        Decimal::from_str_exact("6.000000000000000001").unwrap()
    );

    let err = store
        .set_limit(
            &user,
            Window::Minute,
            Metric::Tokens,
            Some(Decimal::new(15, 1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BudgetError::InvalidLimit {
                metric: Metric::Tokens,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1.5"), "{err}");
}

/// `n` admissions at once on a cap of `cap` requests: exactly `cap` are admitted.
pub async fn concurrent_admissions(store: Arc<dyn BudgetStore>, n: usize, cap: u64) {
    let user = format!("user:{}", unique("n"));
    let limits = Limits::none().with(Metric::Requests, Some(Decimal::from(cap)));
    let admissions: Vec<Admission> = (0..n)
        .map(|_| admission(vec![check(&user, Window::Minute, usage("0.01", 1), limits)]))
        .collect();
    let verdicts = join_all(admissions.iter().map(|a| {
        let (store, a) = (store.clone(), a.clone());
        tokio::spawn(async move { store.admit(&a).await.unwrap() })
    }))
    .await;
    let verdicts: Vec<Verdict> = verdicts.into_iter().map(|v| v.expect("no panic")).collect();
    let admitted = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Admitted(_)))
        .count();
    assert_eq!(admitted as u64, cap.min(n as u64));
    let s = state(&*store, &admissions[0].checks[0]).await;
    assert_eq!(s.reserved.requests, admitted as u64);
    assert_eq!(s.reserved.spend, Decimal::new(admitted as i64, 2));
}

/// `n` admissions at once from two users on one model, each charged to both counters: the
/// model's cap (30) binds, no user passes theirs (20), and each counter holds exactly what
/// was admitted to it — all-or-nothing under contention, across counters.
pub async fn concurrent_across_counters(store: Arc<dyn BudgetStore>, n: usize) {
    let users = [
        format!("user:{}", unique("a")),
        format!("user:{}", unique("b")),
    ];
    let model = format!("model:{}", unique("m"));
    let cap = |c: i64| Limits::none().with(Metric::Requests, Some(Decimal::from(c)));
    let admissions: Vec<Admission> = (0..n)
        .map(|i| {
            // Half the requests list the model first: lock order must not matter.
            let mut checks = vec![
                check(&users[i % 2], Window::Day, usage("0.5", 2), cap(20)),
                check(&model, Window::Day, usage("0.5", 2), cap(30)),
            ];
            if i % 4 < 2 {
                checks.reverse();
            }
            admission(checks)
        })
        .collect();
    let verdicts = join_all(admissions.iter().map(|a| {
        let (store, a) = (store.clone(), a.clone());
        tokio::spawn(async move { store.admit(&a).await.unwrap() })
    }))
    .await;
    let admitted: Vec<&Admission> = admissions
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| matches!(v.as_ref().expect("no panic"), Verdict::Admitted(_)))
        .map(|(a, _)| a)
        .collect();
    assert_eq!(admitted.len(), 30.min(n));
    let per_user = |u: &str| {
        admitted
            .iter()
            .filter(|a| a.checks.iter().any(|c| &*c.counter.subject == u))
            .count() as u64
    };
    let keys: Vec<(CounterKey, Limits)> = users
        .iter()
        .chain([&model])
        .map(|s| {
            (
                CounterKey::at(s.as_str(), Window::Day, now()),
                Limits::none(),
            )
        })
        .collect();
    let states = store.counters(&keys).await.unwrap();
    for (i, user) in users.iter().enumerate() {
        assert!(per_user(user) <= 20);
        assert_eq!(states[i].reserved.requests, per_user(user), "{user}");
    }
    assert_eq!(states[2].reserved.requests, admitted.len() as u64);
    assert_eq!(
        states[2].reserved.spend,
        Decimal::new(5, 1) * Decimal::from(admitted.len() as u64)
    );
}

/// 120 admissions of $1 spread over `stores` (one per process) against one $37 daily cap:
/// exactly 37 are admitted and settled, nothing stays reserved.
pub async fn stores_share_one_cap(stores: Vec<Arc<dyn BudgetStore>>) {
    let subject = format!("user:{}", unique("fleet"));
    let cap = Limits::none().with(Metric::Spend, Some(Decimal::new(37, 0)));
    let each = Usage {
        spend: Decimal::ONE,
        tokens: 1,
        requests: 1,
    };
    let tasks = (0..120).map(|i| {
        let store = stores[i % 4].clone();
        let subject = subject.clone();
        tokio::spawn(async move {
            let admission = Admission {
                id: Uuid::now_v7(),
                checks: vec![Check {
                    counter: CounterKey::at(subject, Window::Day, Utc::now()),
                    estimate: each,
                    defaults: cap,
                }],
            };
            match store.admit(&admission).await.unwrap() {
                Verdict::Admitted(_) => {
                    store.settle(&admission, &each).await.unwrap();
                    true
                }
                Verdict::Refused(_) => false,
            }
        })
    });
    let admitted = join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(admitted, 37, "exactly the cap, across four processes");
    let key = CounterKey::at(subject, Window::Day, Utc::now());
    let state = stores[0].counters(&[(key, cap)]).await.unwrap().remove(0);
    assert_eq!(state.used.spend, Decimal::from(37));
    assert_eq!(state.reserved, Usage::ZERO);
}
