//! A real UTC minute ending under load, across four gateway processes sharing PostgreSQL's
//! budget tables, and again sharing Redis: no spend is lost or counted twice.
//!
//! The rule (DESIGN §12, `docs/decisions.md` "Budgets"): a request belongs to the window it
//! was *admitted* in, and settles there even when it ends in the next one. Each admitted
//! answer says which window that was: its `x-ratelimit-reset-requests` is the time from the
//! admission to the end of the minute that counted it (the user has a per-minute request
//! cap, so that counter is the one reported). Each answer also names its log row
//! (`x-activity-id`). So, per user, exactly:
//!
//! - each minute's counter (`used.spend`, `used.requests`) is the sum of the log rows of the
//!   requests admitted in that minute, and nothing is left reserved;
//! - the two minutes together, and the balance's counter, are `SUM(cost_usd)` of the log;
//! - no minute admitted more requests than its cap (a tight cap refuses in the old minute
//!   and admits again in the new one).
//!
//! The load starts 4 s before a minute ends and runs 4 s into the next one: JSON with and
//! without a token limit, streams that are still running when the minute ends, upstream
//! errors and clients going away. A real boundary rather than an injected clock: the test
//! waits for one (at most a minute, while its gateways are already up), and the property is
//! about processes that each read the wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures_util::future::join_all;
use tower_activity::budget::{
    BudgetStore, CounterKey, Limits, PostgresBudgetStore, RedisBudgetStore, Window,
};
use tower_activity::sink::TableNames;

use super::fleet_budget::{Fleet, redis_url};
use super::*;

/// Load from this long before the minute ends to as long after.
const AROUND: TimeDelta = TimeDelta::seconds(4);
/// Clients sending at once (each one request after the other).
const CLIENTS: usize = 6;

/// One admitted request, as its client saw it.
#[derive(Debug)]
struct Admitted {
    /// The record's id (`x-activity-id`).
    record: String,
    /// The start of the minute that counted it.
    window: DateTime<Utc>,
}

/// What one user's clients saw.
#[derive(Debug, Default)]
struct Seen {
    admitted: Vec<Admitted>,
    refused: usize,
}

/// A Go-style duration as the `x-ratelimit-reset-*` headers write it (`250ms`, `59s`,
/// `1m0s`).
pub(super) fn go_duration(text: &str) -> TimeDelta {
    if let Some(ms) = text.strip_suffix("ms") {
        return TimeDelta::milliseconds(ms.parse().expect("milliseconds"));
    }
    let mut total = TimeDelta::zero();
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' => {
                let n: i64 = number.parse().expect("a number before its unit");
                number.clear();
                total += match c {
                    'h' => TimeDelta::hours(n),
                    'm' => TimeDelta::minutes(n),
                    _ => TimeDelta::seconds(n),
                };
            }
            _ => panic!("not a Go duration: {text:?}"),
        }
    }
    total
}

/// The minute that counted a request admitted between `sent` and `answered`, from the
/// answer's reset: the admission instant plus the reset (rounded up to a whole second) is
/// that minute's end. Exactly one of `minutes` must fit.
fn counted_in(
    reset: TimeDelta,
    sent: DateTime<Utc>,
    answered: DateTime<Utc>,
    minutes: [DateTime<Utc>; 2],
) -> DateTime<Utc> {
    // Whole seconds are rounded up; below a second the milliseconds are truncated.
    let (below, above) = if reset < TimeDelta::seconds(1) {
        (TimeDelta::zero(), TimeDelta::milliseconds(1))
    } else {
        (TimeDelta::seconds(1), TimeDelta::zero())
    };
    let (earliest, latest) = (sent + reset - below, answered + reset + above);
    let fits: Vec<DateTime<Utc>> = minutes
        .into_iter()
        .filter(|start| {
            let end = *start + TimeDelta::minutes(1);
            earliest <= end && end <= latest
        })
        .collect();
    assert_eq!(
        fits.len(),
        1,
        "a reset of {reset} between {sent} and {answered} names one of {minutes:?}"
    );
    fits[0]
}

/// Waits until 4 s (±½ s) before a minute ends; returns that minute's end.
async fn before_a_minute_ends() -> DateTime<Utc> {
    loop {
        let now = Utc::now();
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap();
        let end = minute + TimeDelta::minutes(1);
        let start_at = end - AROUND;
        if now >= start_at && now < start_at + TimeDelta::milliseconds(500) {
            return end;
        }
        let wait = if now < start_at {
            start_at - now
        } else {
            start_at + TimeDelta::minutes(1) - now
        };
        tokio::time::sleep(wait.to_std().unwrap()).await;
    }
}

/// One client: requests of every kind to the four gateways in turn, until `until`.
async fn client(
    fleet: &Fleet,
    c: usize,
    users: &[(String, String)],
    until: DateTime<Utc>,
    minutes: [DateTime<Utc>; 2],
) -> Vec<Seen> {
    let mut seen: Vec<Seen> = users.iter().map(|_| Seen::default()).collect();
    let mut n = 0;
    while Utc::now() < until {
        let i = c + n;
        let u = i % users.len();
        let key = &users[u].1;
        let api = ALL[(c + n / 2) % 4];
        let (stream, headers, limit, cancel): (bool, &[(&str, &str)], Option<u64>, bool) =
            match i % 5 {
                0 => (false, &[], Some(3 + (i % 20) as u64), false),
                1 => (false, &[], None, false),
                // Streams of about a second: the ones admitted last in the old minute end in
                // the new one.
                2 => (
                    true,
                    &[("x-mock-delay-ms", "150"), ("x-mock-chunks", "8")],
                    None,
                    false,
                ),
                3 => (false, &[("x-mock-error", "500")], Some(9), false),
                _ => (
                    true,
                    &[("x-mock-delay-ms", "100"), ("x-mock-chunks", "8")],
                    None,
                    true,
                ),
            };
        let sent = Utc::now();
        let response = fleet
            .send(
                i,
                Method::POST,
                &api.path(stream),
                key,
                api.body(stream, limit),
                headers,
            )
            .await;
        let answered = Utc::now();
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII").to_owned())
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(header("retry-after").is_some(), "a 429 says when to retry");
            seen[u].refused += 1;
            let _ = response.into_body().collect().await;
            // Not the retry-after (the test needs load until the minute ends), but a pause.
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            let reset = header("x-ratelimit-reset-requests")
                .unwrap_or_else(|| panic!("{status}: an admitted answer has the minute's reset"));
            let record = header("x-activity-id").expect("the record's id");
            seen[u].admitted.push(Admitted {
                record,
                window: counted_in(go_duration(&reset), sent, answered, minutes),
            });
            let mut body = response.into_body();
            if cancel {
                first_frame(&mut body).await;
                drop(body); // the client goes away mid-stream
            } else {
                let _ = body.collect().await;
            }
        }
        n += 1;
    }
    seen
}

/// The user's request rows: record id → `cost_usd` (exact, as text; null is 0).
async fn log_rows(pool: &sqlx::PgPool, user: &str) -> BTreeMap<String, Decimal> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT id::text, cost_usd::text FROM activity_log WHERE user_id = $1 AND kind = 'request'",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .expect("the activity log");
    rows.into_iter()
        .map(|(id, cost)| (id, cost.map_or(Decimal::ZERO, |c| c.parse().unwrap())))
        .collect()
}

/// What the test measured, for BENCHMARKS.md.
struct Figures {
    admitted: usize,
    refused: usize,
    per_minute: Vec<(usize, Decimal)>,
    log: Decimal,
}

async fn run(
    store_name: &str,
    store: Arc<dyn BudgetStore>,
    fleet: Fleet,
    pool: &sqlx::PgPool,
) -> Figures {
    // A user whose minute cap is reached in both minutes, and one whose is not.
    let tight = 12;
    let mut users = Vec::new();
    for (name, rpm) in [("tight", tight), ("loose", 100_000)] {
        let (user, key) = fleet
            .user(
                &format!("roll-{name}-{store_name}@example.com"),
                Decimal::from(5),
            )
            .await;
        let (status, v) = fleet
            .call(
                2,
                Method::PUT,
                &format!("/admin/users/{user}/limits"),
                super::fleet_budget::ADMIN,
                json!({ "requests_per_minute": rpm }),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        users.push((user, key, rpm));
    }
    let keys: Vec<(String, String)> = users
        .iter()
        .map(|(u, k, _)| (u.clone(), k.clone()))
        .collect();

    let boundary = before_a_minute_ends().await;
    let minutes = [boundary - TimeDelta::minutes(1), boundary];
    let until = boundary + AROUND;
    let seen = join_all((0..CLIENTS).map(|c| client(&fleet, c, &keys, until, minutes))).await;

    let mut figures = Figures {
        admitted: 0,
        refused: 0,
        per_minute: vec![(0, Decimal::ZERO); 2],
        log: Decimal::ZERO,
    };
    for (u, (user, key, rpm)) in users.iter().enumerate() {
        let admitted: Vec<&Admitted> = seen.iter().flat_map(|s| &s[u].admitted).collect();
        let refused: usize = seen.iter().map(|s| s[u].refused).sum();
        for minute in minutes {
            assert!(
                admitted.iter().any(|a| a.window == minute),
                "{store_name}: requests of {user} admitted in the minute from {minute}"
            );
        }
        // Every record is in the log and every settlement in the store.
        let mut log = BTreeMap::new();
        let granted = Decimal::from(5);
        for _ in 0..200 {
            log = log_rows(pool, user).await;
            let spent = granted - fleet.balance(u, key).await;
            if log.len() == admitted.len() && spent == log.values().copied().sum::<Decimal>() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ids: BTreeSet<&String> = admitted.iter().map(|a| &a.record).collect();
        assert_eq!(
            log.keys().collect::<BTreeSet<_>>(),
            ids,
            "{store_name}: one log row per admitted request, none for a refused one"
        );
        let subject: std::sync::Arc<str> = format!("user:{user}").into();
        let counters: Vec<(CounterKey, Limits)> = minutes
            .iter()
            .map(|m| {
                (
                    CounterKey::at(subject.clone(), Window::Minute, *m),
                    Limits::none(),
                )
            })
            .chain([(
                CounterKey::at(subject.clone(), Window::Total, boundary),
                Limits::none(),
            )])
            .collect();
        let states = store.counters(&counters).await.expect("the store answers");
        assert!(
            Utc::now() < boundary + TimeDelta::seconds(55),
            "the old minute's counter is read before housekeeping may delete it"
        );
        let mut windows_sum = Decimal::ZERO;
        for (m, minute) in minutes.iter().enumerate() {
            let mine: Vec<&Admitted> = admitted
                .iter()
                .filter(|a| a.window == *minute)
                .copied()
                .collect();
            let spend: Decimal = mine.iter().map(|a| log[&a.record]).sum();
            let state = &states[m];
            assert_eq!(
                state.used.spend, spend,
                "{store_name}: the minute from {minute} holds exactly its own requests' cost"
            );
            assert_eq!(
                state.used.requests,
                mine.len() as u64,
                "{store_name}: {minute}"
            );
            assert_eq!(state.reserved.spend, Decimal::ZERO, "nothing left reserved");
            assert_eq!(state.reserved.requests, 0, "nothing left reserved");
            assert!(
                mine.len() as u64 <= *rpm,
                "{store_name}: {} admitted in a minute capped at {rpm}",
                mine.len()
            );
            windows_sum += state.used.spend;
            figures.per_minute[m].0 += mine.len();
            figures.per_minute[m].1 += spend;
        }
        let log_sum: Decimal = log.values().copied().sum();
        assert_eq!(
            windows_sum, log_sum,
            "{store_name}: the minutes together are the log"
        );
        assert_eq!(
            states[2].used.spend, log_sum,
            "{store_name}: the balance's counter is the log"
        );
        if *rpm == tight {
            assert!(
                refused > 0,
                "{store_name}: the tight cap refused in at least one minute"
            );
        }
        figures.admitted += admitted.len();
        figures.refused += refused;
        figures.log += log_sum;
    }
    figures
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} admitted, {} refused; old minute {} requests ${}, new minute {} requests ${}; \
             minutes together ${} vs log ${}",
            self.admitted,
            self.refused,
            self.per_minute[0].0,
            self.per_minute[0].1,
            self.per_minute[1].0,
            self.per_minute[1].1,
            self.per_minute[0].1 + self.per_minute[1].1,
            self.log
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minute_ends_mid_load_on_postgres_and_nothing_is_lost_or_doubled() {
    let pg = TempPg::new().await;
    let fleet = Fleet::new(&pg.url(), None).await;
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let store = PostgresBudgetStore::from_pool(pool.clone(), TableNames::new())
        .await
        .expect("the gateways' budget tables");
    let f = run("postgres", Arc::new(store), fleet, &pool).await;
    println!("postgres, 4 gateways, a minute ending mid-load: {f}");
    pool.close().await;
    pg.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minute_ends_mid_load_on_redis_and_nothing_is_lost_or_doubled() {
    let url = redis_url().await;
    let pg = TempPg::new().await;
    let fleet = Fleet::new(&pg.url(), Some(&url)).await;
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    // The gateways' key space (the default prefix); the users are new, so are their keys.
    let store = RedisBudgetStore::connect(&url)
        .await
        .expect("Redis at REDIS_URL");
    let f = run("redis", Arc::new(store), fleet, &pool).await;
    println!("redis, 4 gateways, a minute ending mid-load: {f}");
    pool.close().await;
    pg.drop_database().await;
}

#[test]
fn resets_name_the_minute_that_counted_the_request() {
    assert_eq!(go_duration("250ms"), TimeDelta::milliseconds(250));
    assert_eq!(go_duration("59s"), TimeDelta::seconds(59));
    assert_eq!(go_duration("1m0s"), TimeDelta::seconds(60));
    assert_eq!(go_duration("23h59m59s"), TimeDelta::seconds(86_399));
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let minutes = [at("2026-01-01T10:00:00Z"), at("2026-01-01T10:01:00Z")];
    // Admitted at 10:00:59.400 (answered 0.3 s later): 0.6 s left, written "600ms".
    let old = counted_in(
        TimeDelta::milliseconds(600),
        at("2026-01-01T10:00:59.300Z"),
        at("2026-01-01T10:00:59.700Z"),
        minutes,
    );
    assert_eq!(old, minutes[0]);
    // Sent before the minute ended, admitted after it: 59.8 s left, written "1m0s".
    let new = counted_in(
        TimeDelta::seconds(60),
        at("2026-01-01T10:00:59.900Z"),
        at("2026-01-01T10:01:00.300Z"),
        minutes,
    );
    assert_eq!(new, minutes[1]);
}
