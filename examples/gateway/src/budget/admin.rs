//! The admin API, mounted only when `ADMIN_TOKEN` is set: credit top-ups and limits per user.
//!
//! Every route needs `Authorization: Bearer <ADMIN_TOKEN>` (anything else is a `401`; a
//! user's API key is not an admin token). Users are named by their id (`user_id` of
//! `/auth/register`); an id no user has is a `404 not_found` naming it, and nothing is
//! stored for it.
//!
//! - `POST /admin/users/{user_id}/credits` `{"amount": "5.00"}` → `{"user_id", "amount",
//!   "balance"}`: adds a positive decimal amount of USD to the user's credits; recorded as a
//!   `credits.topup` event of the user (`app: "Admin"`, metadata `amount`, `granted`,
//!   `balance`), so their activity and live feed show it.
//! - `PUT /admin/users/{user_id}/limits` `{"daily_spend", "monthly_spend",
//!   "requests_per_minute", "tokens_per_day"}` (any subset; `null` removes one) →
//!   `{"user_id", "limits"}`: the administrator's ceilings; the limits in force are the lower
//!   of these and the user's own ([`limits`]).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_activity::budget::{CounterKey, Limits, Metric, Window};

use super::credits::{enabled, event};
use super::limits::{self, Party};
use super::subject;
use crate::AppState;
use crate::auth::presented_key;
use crate::error::ApiError;

/// The admin routes, or none when `ADMIN_TOKEN` is not set (they then answer `404` like any
/// unknown route).
pub fn routes(state: &AppState) -> Router<AppState> {
    let Some(token) = state.budget.as_ref().and_then(|b| b.admin_token.clone()) else {
        return Router::new();
    };
    Router::new()
        .route("/admin/users/{user_id}/credits", post(top_up))
        .route("/admin/users/{user_id}/limits", put(set_limits))
        .layer(from_fn_with_state(token, require_admin))
}

/// Admits only requests bearing the admin token. The hashes are compared, so the time taken
/// says nothing about how much of the token a guess got right.
async fn require_admin(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    let presented = presented_key(request.headers()).unwrap_or("");
    if Sha256::digest(presented.as_bytes()) != Sha256::digest(token.as_bytes()) {
        return ApiError::unauthorized(
            "the admin API needs `Authorization: Bearer <ADMIN_TOKEN>` (the token the gateway was started with)",
        )
        .into_response();
    }
    next.run(request).await
}

/// A positive amount of USD: a decimal string (`"5.00"`) or a number.
fn amount(body: &Value) -> Result<Decimal, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "`amount` must be a positive decimal amount of USD like \"5.00\", got {}",
            body.get("amount").unwrap_or(&Value::Null)
        ))
        .parameter("amount")
    };
    let text = match body.get("amount") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad()),
    };
    let amount: Decimal = text.parse().map_err(|_| bad())?;
    if amount <= Decimal::ZERO {
        return Err(bad());
    }
    Ok(amount)
}

/// `404` unless `user_id` is a registered user: credits or limits for an id nobody has
/// would be stored and never used (and a typo would look like success).
async fn registered(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let user = state
        .accounts
        .user_by_id(user_id)
        .await
        .map_err(|e| ApiError::internal("cannot look the user up", &e))?;
    match user {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!(
            "no user has the id {user_id:?}: use the `user_id` that /auth/register returned"
        ))),
    }
}

async fn top_up(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let budget = enabled(&state)?;
    registered(&state, &user_id).await?;
    let Json(body) = body?;
    let amount = amount(&body)?;
    let subject = subject(&user_id);
    let granted = budget
        .store
        .raise_limit(&subject, Window::Total, Metric::Spend, amount)
        .await
        .map_err(|e| ApiError::internal("cannot add the credits", &e))?;
    let _ = tokio::time::timeout(super::credits::READ_YOUR_SETTLEMENTS, budget.layer.flush()).await;
    let key = CounterKey::at(subject, Window::Total, chrono::Utc::now());
    let total = budget
        .store
        .counters(&[(key, Limits::none())])
        .await
        .map_err(|e| ApiError::internal("cannot read the balance", &e))?;
    let used = total.first().map_or(Decimal::ZERO, |s| s.used.spend);
    let balance = granted - used;
    state.events.record_raw(event(
        "credits.topup",
        &user_id,
        "Admin",
        json!({
            "amount": amount.to_string(),
            "granted": granted.to_string(),
            "balance": balance.to_string(),
        }),
    ));
    tracing::info!(%user_id, %amount, %balance, "credits topped up");
    Ok(Json(json!({
        "user_id": user_id,
        "amount": amount.to_string(),
        "balance": balance.to_string(),
    }))
    .into_response())
}

async fn set_limits(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let budget = enabled(&state)?;
    registered(&state, &user_id).await?;
    let Json(body) = body?;
    let changes = limits::parse(&body)?;
    let in_force = limits::apply(budget, Party::Admin, &user_id, &changes).await?;
    tracing::info!(%user_id, "limits set");
    Ok(Json(json!({ "user_id": user_id, "limits": limits::to_json(&in_force) })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_decimals() {
        assert_eq!(
            amount(&json!({"amount": "5.00"})).unwrap(),
            Decimal::new(500, 2)
        );
        assert_eq!(amount(&json!({"amount": 2})).unwrap(), Decimal::TWO);
        for bad in [
            json!({"amount": "0"}),
            json!({"amount": "-1"}),
            json!({"amount": "five"}),
            json!({}),
        ] {
            assert_eq!(
                amount(&bad).unwrap_err().parameter.as_deref(),
                Some("amount")
            );
        }
    }
}
