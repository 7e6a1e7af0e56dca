//! Credits: the grant at registration, `GET /user/credits`, and the events of both.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tower_activity::budget::{CounterState, Metric, Window};
use tower_activity::{ActivityRecord, RecordKind};

use super::Budget;
use super::limits::{Limit, to_json};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The longest `GET /user/credits` waits for finished requests' settlements to reach the
/// store before it answers (so a request made just before is counted).
pub const READ_YOUR_SETTLEMENTS: Duration = Duration::from_millis(250);

/// The budget, or a `404` when the gateway runs without one (`GATEWAY_BUDGET=off` or
/// `GATEWAY_ACTIVITY=off`).
pub fn enabled(state: &AppState) -> Result<&Budget, ApiError> {
    state.budget.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "this gateway runs without spend control (GATEWAY_BUDGET=off or GATEWAY_ACTIVITY=off)",
        )
    })
}

/// An event of the credits (`model: "credits"`, `provider: "Budget"`) for `user_id`, with
/// `metadata`.
pub fn event(name: &str, user_id: &str, app: &str, metadata: Value) -> ActivityRecord {
    let mut record = ActivityRecord::new(RecordKind::Event);
    record.endpoint = name.to_owned().into();
    record.model = Some("credits".to_owned());
    record.provider = Some("Budget".into());
    record.latency_ms = Some(0.0);
    record.user_id = Some(user_id.to_owned());
    record.app = app.to_owned().into();
    if let Value::Object(map) = metadata {
        record.metadata = map.into();
    }
    record
}

/// The `register` event (`model: "auth"`, `provider`/`app: "Auth"`), with the credits
/// granted in its `metadata.credits` (a decimal string) when there are any.
pub fn registered(user_id: &str, credits: Option<&str>) -> ActivityRecord {
    let mut record = event("register", user_id, "Auth", json!({}));
    record.model = Some("auth".to_owned());
    record.provider = Some("Auth".into());
    if let Some(credits) = credits {
        record.metadata.insert("credits".into(), credits.into());
    }
    record
}

/// What `GET /user/credits` reads from the user's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Granted minus settled spend (`None`: no credits were ever granted, no balance applies).
    pub balance: Option<Decimal>,
    /// Held by requests in flight.
    pub reserved: Decimal,
    /// Settled today (UTC).
    pub spent_today: Decimal,
    /// Settled this month (UTC).
    pub spent_this_month: Decimal,
    /// The limits in force.
    pub limits: super::limits::Values,
    /// What each limit's window has used so far (settled plus reserved).
    pub usage: super::limits::Values,
}

impl Summary {
    /// From the counters of the layer's windows (any order).
    pub fn from_states(states: &[CounterState]) -> Summary {
        let of = |w: Window| states.iter().find(|s| s.counter.window == w);
        let used = |w: Window, m: Metric| of(w).map_or(Decimal::ZERO, |s| s.used.get(m));
        let total = of(Window::Total);
        let balance = total.and_then(|s| Some(s.limits.get(Metric::Spend)? - s.used.spend));
        let mut limits = super::limits::Values::new();
        let mut usage = super::limits::Values::new();
        for l in Limit::ALL {
            let state = of(l.window());
            limits.insert(l, state.and_then(|s| s.limits.get(l.metric())));
            usage.insert(
                l,
                Some(state.map_or(Decimal::ZERO, |s| {
                    s.used.get(l.metric()) + s.reserved.get(l.metric())
                })),
            );
        }
        Summary {
            balance,
            reserved: total.map_or(Decimal::ZERO, |s| s.reserved.spend),
            spent_today: used(Window::Day, Metric::Spend),
            spent_this_month: used(Window::Month, Metric::Spend),
            limits,
            usage,
        }
    }

    /// The JSON of `GET /user/credits` (amounts as decimal strings).
    pub fn to_json(&self) -> Value {
        json!({
            "balance": self.balance.map(|d| d.to_string()),
            "reserved": self.reserved.to_string(),
            "spent_today": self.spent_today.to_string(),
            "spent_this_month": self.spent_this_month.to_string(),
            "limits": to_json(&self.limits),
            "usage": to_json(&self.usage),
        })
    }
}

/// `GET /user/credits` → `{"balance", "reserved", "spent_today", "spent_this_month",
/// "limits": {daily_spend, monthly_spend, requests_per_minute, tokens_per_day}, "usage": {…}}`,
/// every amount a decimal string (`balance` is `null` for a user never granted credits, each
/// limit `null` when not set; `usage` is what each limit's current window has taken, settled
/// plus reserved).
pub async fn get(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Response, ApiError> {
    let budget = enabled(&state)?;
    let _ = tokio::time::timeout(READ_YOUR_SETTLEMENTS, budget.layer.flush()).await;
    let states = budget
        .counters(&caller.user_id)
        .await
        .map_err(|e| ApiError::internal("cannot read the credits", &e))?;
    Ok(Json(Summary::from_states(&states).to_json()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_activity::budget::{CounterKey, Limits, Usage};

    #[test]
    fn a_summary_reads_each_window() {
        let now = chrono::Utc::now();
        let state = |w: Window, limits: Limits, used: Usage, reserved: Usage| CounterState {
            counter: CounterKey::at("user:u", w, now),
            used,
            reserved,
            limits,
        };
        let spend = |cents: i64| Usage {
            spend: Decimal::new(cents, 2),
            tokens: 10,
            requests: 1,
        };
        let states = [
            state(
                Window::Total,
                Limits::none().with(Metric::Spend, Some(Decimal::new(500, 2))),
                spend(120),
                spend(30),
            ),
            state(
                Window::Day,
                Limits::none().with(Metric::Tokens, Some(Decimal::from(1000))),
                spend(20),
                Usage::ZERO,
            ),
            state(Window::Month, Limits::none(), spend(120), Usage::ZERO),
        ];
        let s = Summary::from_states(&states);
        assert_eq!(s.balance, Some(Decimal::new(380, 2)));
        assert_eq!(s.reserved, Decimal::new(30, 2));
        assert_eq!(s.spent_today, Decimal::new(20, 2));
        assert_eq!(s.spent_this_month, Decimal::new(120, 2));
        let j = s.to_json();
        assert_eq!(j["limits"]["tokens_per_day"], "1000");
        assert_eq!(j["limits"]["daily_spend"], Value::Null);
        assert_eq!(j["usage"]["tokens_per_day"], "10");
        assert_eq!(j["usage"]["requests_per_minute"], "0");
        assert_eq!(j["balance"], "3.80");
        assert_eq!(Summary::from_states(&[]).balance, None);
    }
}
