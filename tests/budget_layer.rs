//! The budget layer with the memory store, through the real layers: the concurrency
//! properties every store keeps (`testkit::budget::scenarios`), the store contract, and what
//! a client sees — headers, refusals in each API's shape, events.

use std::sync::Arc;

use rust_decimal::Decimal;
use testkit::budget::{contract, scenarios};
use tower_activity::budget::{BudgetStore, MemoryBudgetStore};

fn store() -> Arc<dyn BudgetStore> {
    Arc::new(MemoryBudgetStore::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overshoot_is_zero_with_max_tokens() {
    let figures = scenarios::exact_with_max_tokens(store(), 40).await;
    assert_eq!(figures.overshoot, Decimal::ZERO);
    println!("memory: {figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overshoot_is_bounded_without_max_tokens() {
    println!(
        "memory: {}",
        scenarios::bounded_without_max_tokens(store(), 30).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_equals_the_log_after_mixed_traffic() {
    println!(
        "memory: {}",
        scenarios::ledger_matches_log(store(), 4, 25).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_rolling_over_mid_load_loses_and_doubles_nothing() {
    println!("memory: {}", scenarios::rollover(store()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_contract() {
    let s = store();
    contract::all_or_nothing_then_settle(&*s).await;
    contract::limits_and_credits(&*s).await;
    contract::concurrent_admissions(s, 50, 20).await;
    contract::concurrent_across_counters(store(), 80).await;
}

mod client_view {
    use super::*;
    use async_trait::async_trait;
    use bytes::Bytes;
    use chrono::{DateTime, Utc};
    use http::{Request, StatusCode};
    use http_body_util::Full;
    use serde_json::Value;
    use testkit::budget::{Stack, chat_body, chat_request, cost, unique};
    use tower::{Layer, ServiceExt};
    use tower_activity::RecordKind;
    use tower_activity::budget::{
        Admission, BudgetError, BudgetLayer, CounterKey, CounterState, Limits, Metric, Scope,
        Usage, Verdict, Window,
    };

    fn json(body: &Bytes) -> Value {
        serde_json::from_slice(body).expect("JSON")
    }

    #[tokio::test]
    async fn every_answer_carries_rate_limit_headers_and_refusals_say_when_to_retry() {
        let user = unique("hdr");
        let stack = Stack::new(store(), |b| {
            b.limit(
                Scope::User,
                Window::Minute,
                Metric::Requests,
                Decimal::from(2),
            )
            .limit(
                Scope::User,
                Window::Day,
                Metric::Tokens,
                Decimal::from(1000),
            )
        });
        let (status, headers, _) = stack.call(chat_request(&user, Some(20), false)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-ratelimit-limit-requests"], "2");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "1");
        assert_eq!(headers["x-ratelimit-limit-tokens"], "1000");
        // This request's reservation (10 + 20 tokens) is counted in what remains.
        assert_eq!(headers["x-ratelimit-remaining-tokens"], "970");
        for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
            let v = headers[name].to_str().unwrap();
            assert!(v.ends_with('s'), "{name}: {v}");
        }
        stack.call(chat_request(&user, Some(20), false)).await;
        let (status, headers, body) = stack.call(chat_request(&user, Some(20), false)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let body = json(&body);
        assert_eq!(body["error"]["type"], "budget_exceeded");
        assert_eq!(body["error"]["code"], "requests_limit_minute");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("user:{user}")) && message.contains("limit of 2"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn refusals_come_in_each_apis_own_shape() {
        let user = unique("shape");
        let stack = Stack::new(store(), |b| {
            b.limit(Scope::User, Window::Hour, Metric::Requests, Decimal::ZERO)
        });
        let send = |path: &'static str, body: &'static str| {
            Request::post(path)
                .header("content-type", "application/json")
                .header("x-user", user.as_str())
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap()
        };
        let (status, _, body) = stack
            .call(send(
                "/v1/messages",
                r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}"#,
            ))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let body = json(&body);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert!(body["error"]["message"].is_string());

        let (status, _, body) = stack
            .call(send(
                "/v1beta/models/gemini-2.5-flash:generateContent",
                r#"{"contents":[]}"#,
            ))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let body = json(&body);
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert!(body["error"]["message"].is_string());

        let (_, _, body) = stack
            .call(send("/v1/responses", r#"{"model":"gpt-4o"}"#))
            .await;
        assert_eq!(json(&body)["error"]["type"], "budget_exceeded");
        stack.settle().await;
        assert!(stack.requests(&user).is_empty(), "nothing went upstream");
        let events = stack.records(&user, RecordKind::Event);
        assert_eq!(events.len(), 3);
        let e = &events[1];
        assert_eq!(e.endpoint, "budget.refused");
        assert_eq!(e.status_code, Some(429));
        assert_eq!(e.cost_usd, None, "events cost nothing");
        assert_eq!(
            e.metadata["request_endpoint"],
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(e.metadata["request_model"], "gemini-2.5-flash");
        assert_eq!(e.metadata["metric"], "requests");
        assert_eq!(e.metadata["window"], "hour");
        assert_eq!(e.metadata["subject"], format!("user:{user}"));
    }

    #[tokio::test]
    async fn an_exhausted_balance_is_a_402_until_topped_up() {
        let user = unique("credits");
        let subject = format!("user:{user}");
        let s = store();
        let stack = Stack::new(s.clone(), |b| b.credits(Scope::User));
        s.raise_limit(
            &subject,
            Window::Total,
            Metric::Spend,
            cost(20) * Decimal::from(2),
        )
        .await
        .unwrap();
        for _ in 0..2 {
            assert_eq!(
                stack.call(chat_request(&user, Some(20), false)).await.0,
                StatusCode::OK
            );
        }
        stack.settle().await;
        let (status, headers, body) = stack.call(chat_request(&user, Some(20), false)).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        assert!(
            headers.get("retry-after").is_none(),
            "waiting does not help"
        );
        let body = json(&body);
        assert_eq!(body["error"]["type"], "insufficient_credits");
        assert_eq!(body["error"]["code"], "insufficient_credits");
        // 80 % and 100 % of the credit were crossed, once each.
        let thresholds: Vec<String> = stack
            .records(&user, RecordKind::Event)
            .iter()
            .filter(|e| e.endpoint == "budget.threshold")
            .map(|e| e.metadata["threshold"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(thresholds, ["0.8", "1"]);

        s.raise_limit(&subject, Window::Total, Metric::Spend, cost(20))
            .await
            .unwrap();
        assert_eq!(
            stack.call(chat_request(&user, Some(20), false)).await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn without_an_activity_layer_the_reservation_is_released() {
        let user = unique("bare");
        let s = store();
        let budget = BudgetLayer::builder_shared(s.clone())
            .attribution(|parts| {
                let user = parts.headers.get("x-user")?.to_str().ok()?;
                Some(tower_activity::Attribution::user(user))
            })
            .limit(Scope::User, Window::Day, Metric::Spend, Decimal::ONE)
            .build()
            .unwrap();
        let service = budget.layer(testkit::budget::fake::FakeLlm);
        let response = service
            .oneshot(chat_request(&user, Some(20), false))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        budget.flush().await;
        let key = CounterKey::at(format!("user:{user}"), Window::Day, Utc::now());
        let state = s
            .counters(&[(key, Limits::none())])
            .await
            .unwrap()
            .remove(0);
        assert_eq!(state.reserved, Usage::ZERO, "released");
        assert_eq!(
            state.used,
            Usage {
                requests: 1,
                ..Usage::ZERO
            },
            "only the request is known"
        );
        assert_eq!(budget.stats().released, 1);
    }

    /// A store that is down.
    struct Down;

    #[async_trait]
    impl tower_activity::budget::BudgetStore for Down {
        async fn admit(&self, _: &Admission) -> Result<Verdict, BudgetError> {
            Err(BudgetError::store("connection refused"))
        }
        async fn settle(&self, _: &Admission, _: &Usage) -> Result<Vec<CounterState>, BudgetError> {
            Err(BudgetError::store("connection refused"))
        }
        async fn counters(
            &self,
            _: &[(CounterKey, Limits)],
        ) -> Result<Vec<CounterState>, BudgetError> {
            Err(BudgetError::store("connection refused"))
        }
        async fn set_limit(
            &self,
            _: &str,
            _: Window,
            _: Metric,
            _: Option<Decimal>,
        ) -> Result<(), BudgetError> {
            Err(BudgetError::store("connection refused"))
        }
        async fn raise_limit(
            &self,
            _: &str,
            _: Window,
            _: Metric,
            _: Decimal,
        ) -> Result<Decimal, BudgetError> {
            Err(BudgetError::store("connection refused"))
        }
        async fn maintain(&self, _: DateTime<Utc>) -> Result<(), BudgetError> {
            Ok(())
        }
        fn maintenance_interval(&self) -> std::time::Duration {
            std::time::Duration::from_secs(60)
        }
    }

    #[tokio::test]
    async fn a_store_outage_fails_open_by_default_and_closed_when_asked() {
        let user = unique("down");
        let open = Stack::new(Arc::new(Down), |b| b.credits(Scope::User));
        assert_eq!(
            open.call(chat_request(&user, None, false)).await.0,
            StatusCode::OK
        );
        assert_eq!(open.budget.stats().store_errors, 1);
        let closed = Stack::new(Arc::new(Down), |b| b.credits(Scope::User).fail_closed(true));
        let (status, _, body) = closed.call(chat_request(&user, None, false)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["error"]["type"], "budget_unavailable");
        // A request no counter applies to never asks the store.
        let anonymous = Request::post("/v1/chat/completions")
            .body(chat_body(None, false))
            .unwrap();
        assert_eq!(closed.call(anonymous).await.0, StatusCode::OK);
        assert_eq!(closed.budget.stats().unchecked, 1);
    }
}
