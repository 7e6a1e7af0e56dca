//! One gateway's own ledgers under concurrent load — `MemoryBudgetStore` (`DATABASE_URL=
//! memory:`) and the SQLite ledger — as `fleet_budget` tests four processes on PostgreSQL and
//! on Redis: 60 requests at once against credit for exactly 25 admit 25 and leave a balance
//! of exactly 0; after mixed JSON, streams, upstream errors, mid-stream errors and clients
//! going away, the ledger's settled spend equals `SUM(cost_usd)` of the user's log.

use futures_util::future::join_all;
use gateway::budget::BudgetConfig;

use super::fleet_budget::Mixed;
use super::*;

const ADMIN: &str = "admin-token-for-concurrency-0123456789";

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, got {v}"))
        .parse()
        .unwrap()
}

/// Registers a user (no initial credits) and tops them up with `credits`; returns the key.
async fn user(gw: &Harness, email: &str, credits: Decimal) -> String {
    let (user, key) = gw.register(email).await;
    let bearer = format!("Bearer {ADMIN}");
    let top = gw
        .call(
            Method::POST,
            &format!("/admin/users/{user}/credits"),
            &[("authorization", &bearer)],
            json!({"amount": credits.to_string()}).to_string(),
        )
        .await;
    assert_eq!(top.status, StatusCode::OK, "{}", top.text());
    key
}

async fn balance(gw: &Harness, key: &str) -> Decimal {
    let answer = gw.get("/user/credits", key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    dec(&answer.json()["balance"])
}

/// `SUM(cost_usd)` and the number of the caller's request rows.
async fn logged(gw: &Harness, key: &str) -> (Decimal, u64) {
    let page = gw.log(key, "kind=request&limit=100").await;
    let rows = page["logs"].as_array().expect("logs");
    let sum = rows.iter().filter_map(|r| record(r).cost_usd).sum();
    (sum, page["total"].as_u64().unwrap())
}

async fn run(name: &str, storage: Storage) -> String {
    let config = BudgetConfig {
        initial_credits: Decimal::ZERO,
        admin_token: Some(ADMIN.to_owned()),
        ..BudgetConfig::default()
    };
    let mut gw = Harness::with_budget(storage, config).await;

    // Exactness: credit for exactly 25 requests of known cost, 60 sent at once.
    let each = cost("gpt-4o-mini", 24);
    let credit = each * Decimal::from(25);
    let key = user(&gw, &format!("exact-{name}@example.com"), credit).await;
    let bearer = format!("Bearer {key}");
    let (path, body) = (Chat.path(false), Chat.body(false, Some(24)).to_string());
    let headers = [("authorization", bearer.as_str())];
    let answers =
        join_all((0..60).map(|_| gw.call(Method::POST, &path, &headers, body.clone()))).await;
    let admitted = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|a| {
            a.status == StatusCode::PAYMENT_REQUIRED
                && a.json()["error"]["type"] == "insufficient_credits"
        })
        .count();
    assert_eq!(admitted + refused, 60, "{name}: a 200 or a 402 each");
    assert_eq!(
        admitted, 25,
        "{name}: exactly the requests the credit covers"
    );
    assert_eq!(
        balance(&gw, &key).await,
        Decimal::ZERO,
        "{name}: spent to the digit"
    );
    assert_eq!(logged(&gw, &key).await, (credit, 25), "{name}: the log");

    // Mixed load: JSON with and without a limit, streams, upstream errors, mid-stream errors
    // and clients going away, at once.
    let granted = Decimal::from(5);
    let key = user(&gw, &format!("mixed-{name}@example.com"), granted).await;
    let bearer = format!("Bearer {key}");
    let mixed = 96;
    join_all((0..mixed).map(|i| {
        let (gw, bearer) = (&gw, &bearer);
        async move {
            let m = Mixed::nth(i);
            let mut headers = vec![("authorization", bearer.as_str())];
            headers.extend_from_slice(m.headers);
            let r = gw
                .send(Method::POST, &m.path(), &headers, m.body().to_string())
                .await;
            m.finish(r).await;
        }
    }))
    .await;
    let (mut ledger, mut log) = (Decimal::MIN, (Decimal::ZERO, 0));
    for _ in 0..200 {
        log = logged(&gw, &key).await;
        ledger = granted - balance(&gw, &key).await;
        if log.1 == mixed as u64 && ledger == log.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.1, mixed as u64, "{name}: one record per request");
    assert_eq!(
        ledger, log.0,
        "{name}: the ledger's settled spend is the log's SUM(cost_usd)"
    );
    assert!(log.0 > Decimal::ZERO);
    gw.stop().await;
    format!(
        "60 requests at once: {admitted} admitted, {refused} refused, overshoot $0; \
         {mixed} mixed requests: ledger ${ledger} vs log ${}",
        log.0
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_gateway_shares_credits_exactly_in_memory() {
    let f = run("memory", Storage::memory()).await;
    println!("memory, 1 gateway: {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_gateway_shares_credits_exactly_on_its_sqlite_ledger() {
    let db = TempDb::new();
    let f = run("sqlite", Storage::open(&db.url()).await.unwrap()).await;
    println!("sqlite ledger, 1 gateway: {f}");
}
