//! What the budget tests share: [`FakeLlm`](fake::FakeLlm), the real layer stack in front of
//! it ([`Stack`]), the properties every store must keep through that stack
//! ([`scenarios`]) and the store contract ([`contract`]). Run on the memory store
//! (`tests/budget_layer.rs`), PostgreSQL and Redis, each with subjects unique to the test,
//! so tests sharing a server never see each other's counters.

pub mod contract;
pub mod fake;
pub mod redis;
pub mod scenarios;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rust_decimal::Decimal;
use serde_json::json;
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt};
use tower_activity::budget::{
    BudgetBody, BudgetLayer, BudgetLayerBuilder, BudgetStore, Metric, Scope, Window,
};
use tower_activity::pricing::{PriceTable, TokenUsage};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityBody, ActivityLayer, ActivityRecord, Attribution, RecordKind};

use crate::framed::FramedBody;

/// The model every scenario asks for.
pub const MODEL: &str = "gpt-4o-mini";
/// The prompt: 40 characters, 10 input tokens.
pub const PROMPT: &str = "Count the tokens of this prompt, please.";
/// Its input tokens.
pub const INPUT: u64 = 10;

/// The exact cost of `output` tokens after the prompt.
pub fn cost(output: u64) -> Decimal {
    let usage = TokenUsage {
        input: INPUT,
        output,
        ..TokenUsage::default()
    };
    PriceTable::embedded().cost(MODEL, &usage).expect("priced")
}

/// The response of the stack.
pub type Answer = Response<BudgetBody<ActivityBody<FramedBody>>>;

/// BudgetLayer → ActivityLayer → FakeLlm, with the user named by `x-user`.
pub struct Stack {
    pub service: BoxCloneService<Request<Full<Bytes>>, Answer, Infallible>,
    pub budget: BudgetLayer,
    pub activity: ActivityLayer,
    pub sink: MemorySink,
}

fn user_of(parts: &http::request::Parts) -> Option<Attribution> {
    let user = parts.headers.get("x-user")?.to_str().ok()?;
    Some(Attribution::user(user))
}

impl Stack {
    /// The stack over `store`, the budget configured by `configure`.
    pub fn new(
        store: Arc<dyn BudgetStore>,
        configure: impl FnOnce(BudgetLayerBuilder) -> BudgetLayerBuilder,
    ) -> Stack {
        let sink = MemorySink::new();
        let activity = ActivityLayer::builder(sink.clone())
            .attribution(user_of)
            .record_id_header(http::HeaderName::from_static("x-activity-id"))
            .build();
        let builder = BudgetLayer::builder_shared(store)
            .attribution(user_of)
            .events(activity.events());
        let budget = configure(builder).build().expect("a valid budget");
        let inner = activity.layer(fake::FakeLlm);
        let service = BoxCloneService::new(budget.layer(inner));
        Stack {
            service,
            budget,
            activity,
            sink,
        }
    }

    /// Sends a request and returns the answer, its body unread.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Answer {
        self.service
            .clone()
            .oneshot(request)
            .await
            .expect("infallible")
    }

    /// Sends a request and reads the whole answer.
    pub async fn call(
        &self,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let response = self.send(request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the body").to_bytes();
        (parts.status, parts.headers, body)
    }

    /// Waits until every record is in the sink and every settlement in the store.
    pub async fn settle(&self) {
        self.activity.writer().flush().await;
        self.budget.flush().await;
        self.activity.writer().flush().await;
    }

    /// `user`'s request records.
    pub fn requests(&self, user: &str) -> Vec<ActivityRecord> {
        self.records(user, RecordKind::Request)
    }

    /// `user`'s records of `kind`.
    pub fn records(&self, user: &str, kind: RecordKind) -> Vec<ActivityRecord> {
        self.sink
            .records()
            .into_iter()
            .filter(|r| r.user_id.as_deref() == Some(user) && r.kind == kind)
            .collect()
    }
}

/// `SUM(cost_usd)` of records (no cost adds 0).
pub fn spend(records: &[ActivityRecord]) -> Decimal {
    records.iter().filter_map(|r| r.cost_usd).sum()
}

/// The head of a chat request from `user`.
pub fn chat(user: &str) -> http::request::Builder {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-user", user)
}

/// The body of a chat request.
pub fn chat_body(max_tokens: Option<u64>, stream: bool) -> Full<Bytes> {
    let mut body = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
    });
    if let Some(max) = max_tokens {
        body["max_tokens"] = max.into();
    }
    Full::new(Bytes::from(body.to_string()))
}

/// A chat request from `user` with its body.
pub fn chat_request(user: &str, max_tokens: Option<u64>, stream: bool) -> Request<Full<Bytes>> {
    chat(user)
        .body(chat_body(max_tokens, stream))
        .expect("a valid request")
}

/// The gateway's budget for one user, as the benches measure it: `user` charged to a balance
/// with a credit (`Scope::User` credits), the day and the month tracked, and a per-minute cap
/// on requests far out of reach. The caller adds its events and builds.
pub fn gateway_shape(builder: BudgetLayerBuilder, user: &'static str) -> BudgetLayerBuilder {
    builder
        .credits(Scope::User)
        .track(Scope::User, Window::Day)
        .track(Scope::User, Window::Month)
        .limit(
            Scope::User,
            Window::Minute,
            Metric::Requests,
            Decimal::from(1_000_000_000_i64),
        )
        .attribution(move |_| Some(Attribution::user(user)))
}

/// A credit of `dollars` to `user`'s balance (its total spend cap).
pub async fn grant(store: &dyn BudgetStore, user: &str, dollars: Decimal) {
    store
        .raise_limit(
            &format!("user:{user}"),
            Window::Total,
            Metric::Spend,
            dollars,
        )
        .await
        .expect("credits granted");
}

/// A unique subject value for one test run (tests share servers).
pub fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::now_v7().simple())
}

/// A clock a test moves.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn at(at: &str) -> Self {
        TestClock(Arc::new(Mutex::new(
            at.parse().expect("an RFC 3339 instant"),
        )))
    }
    pub fn set(&self, at: &str) {
        *self.0.lock().unwrap() = at.parse().expect("an RFC 3339 instant");
    }
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// What a concurrency scenario measured, for the report and BENCHMARKS.md.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub scenario: &'static str,
    pub requests: usize,
    pub admitted: usize,
    pub refused: usize,
    pub limit: Decimal,
    pub overshoot: Decimal,
    pub ledger: Decimal,
    pub log: Decimal,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} requests, {} admitted, {} refused, limit ${}, overshoot ${}, ledger ${} vs log ${}",
            self.scenario,
            self.requests,
            self.admitted,
            self.refused,
            self.limit,
            self.overshoot,
            self.ledger,
            self.log
        )
    }
}
