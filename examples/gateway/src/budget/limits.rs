//! A user's four limits, who may set them, and `PUT /user/limits`.
//!
//! | name | window | metric |
//! |---|---|---|
//! | `daily_spend` | UTC day | USD (decimal string) |
//! | `monthly_spend` | UTC month | USD (decimal string) |
//! | `requests_per_minute` | UTC minute | requests (whole number) |
//! | `tokens_per_day` | UTC day | input + output tokens (whole number) |
//!
//! Two parties set them: the administrator (`PUT /admin/users/{id}/limits`, a *ceiling*) and
//! the user (`PUT /user/limits`, only at or below the ceiling). Each keeps its own values in
//! the budget store, under `admin:user:{id}` and `self:user:{id}`; the cap in force on the
//! user's counters (`user:{id}`) is the lower of the two, so a user who lowers a limit and
//! later removes their own value gets the administrator's back. A body names any subset of
//! the four; `null` removes that party's value.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tower_activity::budget::{CounterKey, Limits, Metric, Window};

use super::{Budget, subject};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// One of a user's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    /// USD per UTC day.
    DailySpend,
    /// USD per UTC month.
    MonthlySpend,
    /// Requests per UTC minute.
    RequestsPerMinute,
    /// Input + output tokens per UTC day.
    TokensPerDay,
}

impl Limit {
    /// Every limit, in the order the API lists them.
    pub const ALL: [Limit; 4] = [
        Limit::DailySpend,
        Limit::MonthlySpend,
        Limit::RequestsPerMinute,
        Limit::TokensPerDay,
    ];

    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Limit::DailySpend => "daily_spend",
            Limit::MonthlySpend => "monthly_spend",
            Limit::RequestsPerMinute => "requests_per_minute",
            Limit::TokensPerDay => "tokens_per_day",
        }
    }

    /// The counter window it caps.
    pub fn window(self) -> Window {
        match self {
            Limit::DailySpend | Limit::TokensPerDay => Window::Day,
            Limit::MonthlySpend => Window::Month,
            Limit::RequestsPerMinute => Window::Minute,
        }
    }

    /// The metric it caps.
    pub fn metric(self) -> Metric {
        match self {
            Limit::DailySpend | Limit::MonthlySpend => Metric::Spend,
            Limit::RequestsPerMinute => Metric::Requests,
            Limit::TokensPerDay => Metric::Tokens,
        }
    }

    fn from_name(name: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// Who sets a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The administrator: a ceiling.
    Admin,
    /// The user: at most the ceiling.
    User,
}

impl Party {
    fn subject(self, user_id: &str) -> String {
        match self {
            Party::Admin => format!("admin:{}", subject(user_id)),
            Party::User => format!("self:{}", subject(user_id)),
        }
    }
}

/// A change: each named limit's new value, `None` to remove it.
pub type Changes = BTreeMap<Limit, Option<Decimal>>;

/// Each limit's value (`None`: no limit).
pub type Values = BTreeMap<Limit, Option<Decimal>>;

/// Reads a limits body: an object naming any of the four, each a non-negative decimal
/// (spend: a string like `"5.00"` or a number; counts: whole numbers) or `null`.
pub fn parse(body: &Value) -> Result<Changes, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object like {\"daily_spend\": \"5.00\", \"requests_per_minute\": 60}",
        ));
    };
    let mut changes = Changes::new();
    for (name, value) in map {
        let limit = Limit::from_name(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown limit `{name}`: use daily_spend, monthly_spend, requests_per_minute or tokens_per_day"
            ))
            .parameter(name.clone())
        })?;
        changes.insert(limit, parse_value(limit, value)?);
    }
    if changes.is_empty() {
        return Err(ApiError::bad_request(
            "no limit named: give at least one of daily_spend, monthly_spend, requests_per_minute, tokens_per_day",
        ));
    }
    Ok(changes)
}

fn parse_value(limit: Limit, value: &Value) -> Result<Option<Decimal>, ApiError> {
    let bad = |why: &str| {
        Err(
            ApiError::bad_request(format!("`{}` {why}, got {value}", limit.name()))
                .parameter(limit.name()),
        )
    };
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return bad("must be a number, a decimal string or null"),
    };
    let Ok(amount) = text.parse::<Decimal>() else {
        return bad("must be a number, a decimal string or null");
    };
    if amount.is_sign_negative() && !amount.is_zero() {
        return bad("must not be negative");
    }
    if limit.metric() != Metric::Spend && !amount.fract().is_zero() {
        return bad("must be a whole number");
    }
    if limit.metric() != Metric::Spend && amount > Decimal::from(i64::MAX) {
        return bad("is too large");
    }
    Ok(Some(amount))
}

/// The values `party` set for `user_id`.
async fn values(budget: &Budget, party: Party, user_id: &str) -> Result<Values, ApiError> {
    read(budget, &party.subject(user_id)).await
}

async fn read(budget: &Budget, subject: &str) -> Result<Values, ApiError> {
    let now = chrono::Utc::now();
    let keys: Vec<(CounterKey, Limits)> = [Window::Minute, Window::Day, Window::Month]
        .into_iter()
        .map(|w| (CounterKey::at(subject, w, now), Limits::none()))
        .collect();
    let states = budget
        .store
        .counters(&keys)
        .await
        .map_err(|e| ApiError::internal("cannot read the limits", &e))?;
    Ok(Limit::ALL
        .into_iter()
        .map(|l| {
            let cap = states
                .iter()
                .find(|s| s.counter.window == l.window())
                .and_then(|s| s.limits.get(l.metric()));
            (l, cap)
        })
        .collect())
}

/// Applies `changes` by `party` to `user_id`'s limits; returns the limits in force.
pub async fn apply(
    budget: &Budget,
    party: Party,
    user_id: &str,
    changes: &Changes,
) -> Result<Values, ApiError> {
    // One edit at a time in this process: each reads the other party's values to set the
    // cap in force.
    let _edit = budget.edits.lock().await;
    let ceilings = values(budget, Party::Admin, user_id).await?;
    if party == Party::User {
        for (limit, value) in changes {
            if let (Some(value), Some(Some(ceiling))) = (value, ceilings.get(limit))
                && value > ceiling
            {
                return Err(ApiError::bad_request(format!(
                    "`{}` {value} is above the limit of {ceiling} the administrator set: \
                     you can only lower your limits",
                    limit.name()
                ))
                .parameter(limit.name()));
            }
        }
    }
    let own = party.subject(user_id);
    for (limit, value) in changes {
        set(budget, &own, *limit, *value).await?;
    }
    let admin = values(budget, Party::Admin, user_id).await?;
    let user = values(budget, Party::User, user_id).await?;
    let mut in_force = Values::new();
    for limit in Limit::ALL {
        let lower = match (admin[&limit], user[&limit]) {
            (Some(a), Some(u)) => Some(a.min(u)),
            (a, u) => a.or(u),
        };
        set(budget, &subject(user_id), limit, lower).await?;
        in_force.insert(limit, lower);
    }
    Ok(in_force)
}

async fn set(
    budget: &Budget,
    subject: &str,
    limit: Limit,
    value: Option<Decimal>,
) -> Result<(), ApiError> {
    budget
        .store
        .set_limit(subject, limit.window(), limit.metric(), value)
        .await
        .map_err(|e| ApiError::internal("cannot store the limit", &e))
}

/// The limits as JSON: each name with a decimal string, or `null` when there is none.
pub fn to_json(limits: &Values) -> Value {
    let map: Map<String, Value> = Limit::ALL
        .into_iter()
        .map(|l| {
            let v = limits.get(&l).copied().flatten();
            (
                l.name().to_owned(),
                v.map_or(Value::Null, |d| d.to_string().into()),
            )
        })
        .collect();
    Value::Object(map)
}

/// `PUT /user/limits` `{"daily_spend": "2.00", …}` → `{"limits": {…}}` (the limits in
/// force). A value above the administrator's is a `400`; `null` removes one's own value.
pub async fn put_own(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let budget = super::credits::enabled(&state)?;
    let Json(body) = body?;
    let changes = parse(&body)?;
    let in_force = apply(budget, Party::User, &caller.user_id, &changes).await?;
    Ok(Json(json!({ "limits": to_json(&in_force) })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_limits_and_values() {
        let c = parse(
            &json!({"daily_spend": "5.00", "requests_per_minute": 60, "tokens_per_day": null}),
        )
        .unwrap();
        assert_eq!(c[&Limit::DailySpend], Some(Decimal::new(500, 2)));
        assert_eq!(c[&Limit::RequestsPerMinute], Some(Decimal::from(60)));
        assert_eq!(c[&Limit::TokensPerDay], None);
        assert!(!c.contains_key(&Limit::MonthlySpend));
        for (body, field) in [
            (json!({"weekly_spend": "1"}), "weekly_spend"),
            (json!({"daily_spend": "-1"}), "daily_spend"),
            (json!({"requests_per_minute": 1.5}), "requests_per_minute"),
            (json!({"tokens_per_day": true}), "tokens_per_day"),
        ] {
            let e = parse(&body).unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some(field), "{body}");
        }
        assert!(parse(&json!({})).is_err());
        assert!(parse(&json!([1])).is_err());
    }
}
