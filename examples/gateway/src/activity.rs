//! The activity API the dashboard reads: `GET /user/activity/stats` and
//! `GET /user/activity/log`, the caller's own records only.
//!
//! Parameters are parsed by [`StatsQuery::parse`] and [`LogQuery::parse`] (their docs list
//! them); a bad one is `400 {"error": {"message", "type": "invalid_parameter", "parameter"}}`.
//! A store failure is a `500` whose cause goes to the log, not to the client.
//!
//! Reads see the caller's own writes: before querying, a handler waits (at most
//! [`READ_YOUR_WRITES`]) for the writer to store what is queued, so a request made just before
//! is in the answer even though the writer batches every second. Concurrent reads share one
//! flush ([`ReadYourWrites`](crate::fresh::ReadYourWrites)).
//!
//! Each log row is an [`ActivityRecord`] (its JSON names)
//! plus the field names of the original API, so that its dashboard works unchanged:
//!
//! | field | value |
//! |---|---|
//! | `tokens` | `input_tokens + output_tokens`, unknown counts as 0 (as `total_tokens` in stats) |
//! | `cost` | `cost_usd` as a JSON **number**, 0 when unknown — for display only; the exact value is `cost_usd` (a string, `null` when unknown) |
//! | `speed`, `finish_reason`, `app` | the record's own fields, same names |
//! | `metadata.prompt_tokens`, `metadata.completion_tokens` | `input_tokens`, `output_tokens` |
//! | `metadata.endpoint`, `metadata.session_id` | `endpoint`, `session_id` |

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use tower_activity::query::{LogQuery, StatsQuery};
use tower_activity::{ActivityRecord, QueryError};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The longest a read waits for queued records to be stored before it answers.
pub const READ_YOUR_WRITES: Duration = Duration::from_millis(250);

/// Waits until what is queued now is stored in the database, or [`READ_YOUR_WRITES`] has
/// passed (the other sinks, an OpenTelemetry collector that is down, are not waited for).
async fn settle(state: &AppState) {
    state.fresh.settle(READ_YOUR_WRITES).await;
}

/// `GET /user/activity/stats?days=7` (or `from`/`to`, `include_events`).
pub async fn stats(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    params: Params,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let query = StatsQuery::parse(params).map_err(query_error)?;
    settle(&state).await;
    let stats = state
        .activity
        .stats(&caller.user_id, &query)
        .await
        .map_err(query_error)?;
    Ok(Json(stats).into_response())
}

/// `GET /user/activity/log?limit=50&page=1` (or `offset`, `cursor`, `from`, `to`, `model`,
/// `provider`, `kind`).
pub async fn log(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    params: Params,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let query = LogQuery::parse(params).map_err(query_error)?;
    settle(&state).await;
    let page = state
        .activity
        .log(&caller.user_id, &query)
        .await
        .map_err(query_error)?;
    let logs: Vec<Value> = page.logs.iter().map(legacy_row).collect();
    Ok(Json(json!({
        "logs": logs,
        "total": page.total,
        "page": page.page,
        "limit": page.limit,
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }))
    .into_response())
}

/// `GET /user/activity/stream`: the caller's records as Server-Sent Events once stored (see
/// [`dashboard::live`](crate::dashboard::live)).
pub async fn stream(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    let feed = state.live_feeds.subscribe(&caller.user_id);
    let response = crate::dashboard::live::stream(caller.user_id, feed);
    // The feed never ends by itself: end it when the gateway starts shutting down.
    let mut closing = state.closing.clone();
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let (parts, body) = response.into_parts();
    let body = Body::from_stream(body.into_data_stream().take_until(closed));
    Response::from_parts(parts, body)
}

/// A record as a log row: its own fields plus the original API's names (see the module docs).
pub fn legacy_row(record: &ActivityRecord) -> Value {
    let mut row = serde_json::to_value(record).unwrap_or_else(|_| json!({}));
    let tokens = record.input_tokens.unwrap_or(0) + record.output_tokens.unwrap_or(0);
    let cost = record.cost_usd.and_then(|c| c.to_f64()).unwrap_or(0.0);
    if let Value::Object(map) = &mut row {
        map.insert("tokens".into(), tokens.into());
        map.insert("cost".into(), json!(cost));
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        if let Value::Object(metadata) = metadata {
            metadata.insert("prompt_tokens".into(), json!(record.input_tokens));
            metadata.insert("completion_tokens".into(), json!(record.output_tokens));
            metadata.insert("endpoint".into(), json!(record.endpoint));
            metadata.insert("session_id".into(), json!(record.session_id));
        }
    }
    row
}

fn query_error(e: QueryError) -> ApiError {
    match e.parameter() {
        Some(parameter) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string())
                .parameter(parameter)
        }
        None => ApiError::internal("cannot read the activity log", &e),
    }
}
