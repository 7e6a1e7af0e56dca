//! Four gateway processes (the `gateway` binary) enforcing one user's credits together, on
//! PostgreSQL's budget tables and on Redis (`BUDGET_STORE`): concurrent requests never take
//! the balance past the credit and never refuse one that fit; after mixed JSON, streams,
//! upstream errors and client cancels, the ledger's settled spend equals `SUM(cost_usd)` of
//! the user's activity log, exactly; without `max_tokens`, concurrent requests pass the
//! balance by at most the estimate bound (each admitted request's output beyond
//! `BUDGET_DEFAULT_OUTPUT_TOKENS`, priced).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use futures_util::future::join_all;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::*;

pub(super) const ADMIN: &str = "fleet-admin-token-0123456789abcdef";
pub(super) const GATEWAYS: usize = 4;
/// The fleet's `BUDGET_DEFAULT_OUTPUT_TOKENS`.
const DEFAULT_OUTPUT: &str = "8";

pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One gateway process, killed when dropped.
pub(super) struct Process {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Starts a `gateway` process on `database_url` (its counters in `budget_store` when given),
/// `INITIAL_CREDITS=0`, and waits for its `/healthz`.
pub(super) async fn start(database_url: &str, budget_store: Option<&str>) -> Process {
    let addr = free_addr();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .env("GATEWAY_ADDR", addr.to_string())
        .env("DATABASE_URL", database_url)
        // Each gateway starts its own mock upstream (and forwards it the `x-mock-*` headers).
        .env_remove("UPSTREAM_URL")
        .env_remove("GATEWAY_CONFIG")
        .env("ADMIN_TOKEN", ADMIN)
        .env("INITIAL_CREDITS", "0")
        .env("ACTIVITY_BATCH_INTERVAL_MS", "50")
        // Exactness, not speed: on a busy machine 60 admissions queueing on one user's rows
        // take seconds; a timeout would refuse them (503), which is not what is tested here.
        .env("BUDGET_TIMEOUT_MS", "120000")
        // A request without a token limit reserves 8 output tokens; the mock answers 24.
        .env("BUDGET_DEFAULT_OUTPUT_TOKENS", DEFAULT_OUTPUT)
        .env("RUST_LOG", "warn")
        .env_remove("BUDGET_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = budget_store {
        command.env("BUDGET_STORE", url);
    }
    let mut child = command.spawn().expect("the gateway binary starts");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..300 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the gateway on {addr} exited at startup: {status}");
        }
        let health = Request::get(format!("http://{addr}/healthz"))
            .body(Full::default())
            .unwrap();
        if let Ok(r) = client.request(health).await {
            if r.status() == StatusCode::OK {
                return Process { child, addr };
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway on {addr} never answered /healthz");
}

/// Gateway processes sharing one database (and budget store), and a client for them.
pub(super) struct Fleet {
    pub(super) gateways: Vec<Process>,
    pub(super) client: HttpClient,
}

impl Fleet {
    /// [`GATEWAYS`] processes on `database_url` (and `budget_store`).
    pub(super) async fn new(database_url: &str, budget_store: Option<&str>) -> Fleet {
        let mut gateways = Vec::new();
        for _ in 0..GATEWAYS {
            gateways.push(start(database_url, budget_store).await);
        }
        Fleet {
            gateways,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request to gateway `i` (modulo their number) and reads the JSON answer.
    pub(super) async fn call(
        &self,
        i: usize,
        method: Method,
        path: &str,
        auth: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let response = self.send(i, method, path, auth, body, headers).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Sends a request to gateway `i` (modulo their number); the answer's body unread.
    pub(super) async fn send(
        &self,
        i: usize,
        method: Method,
        path: &str,
        auth: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> hyper::Response<hyper::body::Incoming> {
        let addr = self.gateways[i % self.gateways.len()].addr;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("authorization", format!("Bearer {auth}"))
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        self.client
            .request(request.body(Full::new(body)).unwrap())
            .await
            .expect("the gateway answers")
    }

    /// Registers a user on the first gateway and grants `credits` through the second.
    pub(super) async fn user(&self, email: &str, credits: Decimal) -> (String, String) {
        let (status, v) = self
            .call(
                0,
                Method::POST,
                "/auth/register",
                "",
                json!({"email": email}),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["credits"], "0");
        let user = v["user_id"].as_str().unwrap().to_owned();
        let (status, top) = self
            .call(
                1,
                Method::POST,
                &format!("/admin/users/{user}/credits"),
                ADMIN,
                json!({"amount": credits.to_string()}),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{top}");
        (user, v["api_key"].as_str().unwrap().to_owned())
    }

    /// The user's balance, read through gateway `i`.
    pub(super) async fn balance(&self, i: usize, key: &str) -> Decimal {
        let (status, v) = self
            .call(i, Method::GET, "/user/credits", key, Value::Null, &[])
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["balance"].as_str().unwrap().parse().unwrap()
    }
}

/// `SUM(cost_usd)` and the count of `user`'s request records, exactly (as text).
pub(super) async fn log_sum(pool: &sqlx::PgPool, user: &str) -> (Decimal, i64) {
    let (sum, n): (String, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(cost_usd), 0)::text, COUNT(*) FROM activity_log \
         WHERE user_id = $1 AND kind = 'request'",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .expect("the activity log");
    (sum.parse().unwrap(), n)
}

/// What one fleet run measured.
#[derive(Debug)]
struct Figures {
    requests: usize,
    admitted: usize,
    refused: usize,
    overshoot: Decimal,
    mixed: usize,
    ledger: Decimal,
    log: Decimal,
    unlimited: Unlimited,
}

/// The run without `max_tokens`.
#[derive(Debug)]
struct Unlimited {
    requests: usize,
    admitted: usize,
    credit: Decimal,
    overshoot: Decimal,
    bound: Decimal,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests at once: {} admitted, {} refused, overshoot ${}; {} mixed requests: \
             ledger ${} vs log ${}; {} without max_tokens: {} admitted, credit ${}, \
             overshoot ${} (bound ${})",
            self.requests,
            self.admitted,
            self.refused,
            self.overshoot,
            self.mixed,
            self.ledger,
            self.log,
            self.unlimited.requests,
            self.unlimited.admitted,
            self.unlimited.credit,
            self.unlimited.overshoot,
            self.unlimited.bound,
        )
    }
}

async fn run(store: &str, budget_store: Option<&str>) -> Figures {
    let pg = TempPg::new().await;
    let fleet = Fleet::new(&pg.url(), budget_store).await;

    // 1. Exactness: credit for exactly 25 requests of known cost, 60 sent at once.
    let each = cost("gpt-4o-mini", 24);
    let credit = each * Decimal::from(25);
    let (user, key) = fleet
        .user(&format!("exact-{store}@example.com"), credit)
        .await;
    let body = Chat.body(false, Some(24));
    let path = Chat.path(false);
    let answers =
        join_all((0..60).map(|i| fleet.call(i, Method::POST, &path, &key, body.clone(), &[])))
            .await;
    let admitted = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = answers
        .iter()
        .filter(|(s, v)| {
            *s == StatusCode::PAYMENT_REQUIRED && v["error"]["type"] == "insufficient_credits"
        })
        .count();
    assert_eq!(admitted + refused, 60, "{answers:?}");
    assert_eq!(
        admitted, 25,
        "{store}: exactly the requests the credit covers"
    );
    let mut balance = Decimal::MIN;
    for _ in 0..100 {
        balance = fleet.balance(3, &key).await;
        if balance == Decimal::ZERO {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        balance,
        Decimal::ZERO,
        "{store}: spent to the last digit, not past it"
    );
    let overshoot = if balance < Decimal::ZERO {
        -balance
    } else {
        Decimal::ZERO
    };
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let mut logged = (Decimal::ZERO, 0);
    for _ in 0..100 {
        logged = log_sum(&pool, &user).await;
        if logged.1 == 25 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        logged,
        (credit, 25),
        "{store}: the log holds the admitted requests"
    );

    // 2. Mixed load: JSON with and without a limit, streams, upstream errors, mid-stream
    // errors and clients going away, on all four gateways at once.
    let granted = Decimal::from(5);
    let (user, key) = fleet
        .user(&format!("mixed-{store}@example.com"), granted)
        .await;
    let mixed = 96;
    let sends = (0..mixed).map(|i| {
        let fleet = &fleet;
        let key = key.clone();
        async move {
            let m = Mixed::nth(i);
            let r = fleet
                .send(i, Method::POST, &m.path(), &key, m.body(), m.headers)
                .await;
            m.finish(r).await;
        }
    });
    join_all(sends).await;
    let (mut ledger, mut log) = (Decimal::MIN, (Decimal::ZERO, 0));
    for _ in 0..200 {
        log = log_sum(&pool, &user).await;
        ledger = granted - fleet.balance(2, &key).await;
        if log.1 == mixed as i64 && ledger == log.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.1, mixed as i64, "{store}: one record per request");
    assert_eq!(
        ledger, log.0,
        "{store}: the ledger's settled spend is the log's SUM(cost_usd)"
    );
    assert!(log.0 > Decimal::ZERO);
    let unlimited = without_max_tokens(&fleet, &pool, store).await;
    pool.close().await;
    drop(fleet);
    pg.drop_database().await;
    Figures {
        requests: 60,
        admitted,
        refused,
        overshoot,
        mixed,
        ledger,
        log: log.0,
        unlimited,
    }
}

/// Part 3, without `max_tokens`: 24 streams of 1.6 s at once, each reserving 8 output
/// tokens and using 24, against a credit of six reservations. The balance is passed, by at
/// most `admitted × (cost(24) − cost(8))`; the ledger is the log.
async fn without_max_tokens(fleet: &Fleet, pool: &sqlx::PgPool, store: &str) -> Unlimited {
    let output: u64 = DEFAULT_OUTPUT.parse().unwrap();
    let (reserved, actual) = (cost("gpt-4o-mini", output), cost("gpt-4o-mini", 24));
    let credit = reserved * Decimal::from(6);
    let (user, key) = fleet
        .user(&format!("unlimited-{store}@example.com"), credit)
        .await;
    let n = 24;
    let (path, body) = (Chat.path(true), Chat.body(true, None));
    let headers = [("x-mock-delay-ms", "200"), ("x-mock-chunks", "8")];
    let answers =
        join_all((0..n).map(|i| fleet.call(i, Method::POST, &path, &key, body.clone(), &headers)))
            .await;
    let admitted = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::PAYMENT_REQUIRED)
        .count();
    assert_eq!(admitted + refused, n, "{store}: a 200 or a 402 each");
    // However admissions and settlements interleave, the third request still fits.
    assert!(admitted >= 3, "{store}: {admitted} admitted");
    let spent = actual * Decimal::from(admitted as u64);
    let mut log = (Decimal::ZERO, 0);
    let mut balance = Decimal::MIN;
    for _ in 0..200 {
        log = log_sum(pool, &user).await;
        balance = fleet.balance(1, &key).await;
        if log.1 == admitted as i64 && balance == credit - spent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log, (spent, admitted as i64), "{store}: the log");
    assert_eq!(balance, credit - spent, "{store}: the ledger is the log");
    let overshoot = spent - credit;
    let bound = (actual - reserved) * Decimal::from(admitted as u64);
    assert!(overshoot > Decimal::ZERO, "{store}: the balance was passed");
    assert!(
        overshoot <= bound,
        "{store}: overshoot {overshoot} within the bound {bound}"
    );
    Unlimited {
        requests: n,
        admitted,
        credit,
        overshoot,
        bound,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_gateways_share_credits_exactly_on_postgres() {
    let f = run("postgres", None).await;
    println!("postgres, 4 gateways: {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_gateways_share_credits_exactly_on_redis() {
    let url = redis_url().await;
    let f = run("redis", Some(&url)).await;
    println!("redis, 4 gateways: {f}");
}

/// `REDIS_URL` (default `redis://127.0.0.1:6379`); panics naming the variable when nothing
/// answers there.
pub(super) async fn redis_url() -> String {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|a| a.rsplit('@').next().unwrap_or(a).to_owned())
        .unwrap_or_default();
    if tokio::net::TcpStream::connect(&authority).await.is_err() {
        panic!("Redis at REDIS_URL={url} is unreachable: start it (.ci/run does) or set REDIS_URL");
    }
    url
}

/// Request `i` of the mixed load, by `i % 6`: JSON (a third with a token limit), an upstream
/// `500`, a stream, a stream failing mid-way, a slow stream the client leaves after its first
/// frame; the four APIs in turn.
pub(super) struct Mixed {
    api: Api,
    stream: bool,
    limit: Option<u64>,
    /// The `x-mock-*` headers.
    pub(super) headers: &'static [(&'static str, &'static str)],
    cancel: bool,
    expect: Option<StatusCode>,
}

impl Mixed {
    pub(super) fn nth(i: usize) -> Mixed {
        let cancel = i % 6 == 5;
        let (stream, headers, expect): (bool, &'static [(&'static str, &'static str)], _) =
            match i % 6 {
                0 | 1 => (false, &[], Some(StatusCode::OK)),
                2 => (
                    false,
                    &[("x-mock-error", "500")],
                    Some(StatusCode::INTERNAL_SERVER_ERROR),
                ),
                3 => (true, &[], Some(StatusCode::OK)),
                4 => (true, &[("x-mock-error", "mid-stream")], None),
                _ => (
                    true,
                    &[("x-mock-delay-ms", "40"), ("x-mock-chunks", "8")],
                    Some(StatusCode::OK),
                ),
            };
        Mixed {
            api: ALL[i % 4],
            stream,
            limit: (i % 3 == 0 && !cancel).then_some(7),
            headers,
            cancel,
            expect,
        }
    }

    pub(super) fn path(&self) -> String {
        self.api.path(self.stream)
    }

    pub(super) fn body(&self) -> Value {
        self.api.body(self.stream, self.limit)
    }

    /// Checks the status, then reads the whole body, or leaves after the first frame.
    pub(super) async fn finish(&self, r: hyper::Response<hyper::body::Incoming>) {
        if let Some(status) = self.expect {
            assert_eq!(r.status(), status, "{:?} stream={}", self.api, self.stream);
        }
        let mut body = r.into_body();
        if self.cancel {
            first_frame(&mut body).await;
            drop(body); // the client goes away mid-stream
        } else {
            let _ = body.collect().await;
        }
    }
}
