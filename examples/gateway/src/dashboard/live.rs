//! `GET /user/activity/stream`: the caller's new records as Server-Sent Events.
//!
//! The gateway authenticates the request (Bearer API key → user id) and hands [`stream()`] the
//! user id and a fresh receiver of that user's records
//! ([`LiveHub::subscribe`](crate::live_hub::LiveHub::subscribe)). The events:
//!
//! | event | data | when |
//! |---|---|---|
//! | `ready` | `{}` | first, once subscribed: records stored from now on will follow |
//! | `activity` | one `ActivityRecord` as JSON (the log's row shape); the SSE `id` is the record's | each of the caller's records, once stored |
//! | `lagged` | `{"missed": N}` | the connection fell more than the channel's capacity behind and lost N of the caller's records: re-read stats and log |
//!
//! Records of other users are never sent, not even counted. Comment lines (`: keep-alive`)
//! every 15 s keep idle proxies from closing the connection. The stream ends when the sink
//! is dropped (the gateway shuts down).
//!
//! Browsers' `EventSource` cannot send an `Authorization` header, so the dashboard reads this
//! stream with `fetch()` and the header (see `docs/decisions.md`, "Dashboard"); any SSE client
//! that can set a header (curl, a server) works as well:
//!
//! ```text
//! curl -N -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/user/activity/stream
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tower_activity::ActivityRecord;

/// How often an idle stream sends a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE response for `user_id`: `ready`, then each of their records from `receiver`.
pub fn stream(user_id: String, receiver: Receiver<Arc<ActivityRecord>>) -> Response {
    let ready = stream::once(async { Event::default().event("ready").data("{}") });
    let mut response = Sse::new(
        ready
            .chain(events(user_id, receiver))
            .map(Ok::<_, Infallible>),
    )
    .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
    .into_response();
    // Reverse proxies (nginx) buffer responses unless told not to; a feed must not wait.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The `activity` and `lagged` events of `user_id` from `receiver`, until it closes.
fn events(
    user_id: String,
    receiver: Receiver<Arc<ActivityRecord>>,
) -> impl Stream<Item = Event> + Send {
    stream::unfold((user_id, receiver), |(user_id, mut receiver)| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(record) if record.user_id.as_deref() == Some(user_id.as_str()) => {
                    activity(&record)
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => Some(
                    Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{missed}}}")),
                ),
                Err(RecvError::Closed) => return None,
            };
            if let Some(event) = event {
                return Some((event, (user_id, receiver)));
            }
        }
    })
}

/// One record as an `activity` event; `None` (skipped, logged) if it cannot be serialised.
fn activity(record: &ActivityRecord) -> Option<Event> {
    match serde_json::to_string(record) {
        Ok(json) => Some(
            Event::default()
                .event("activity")
                .id(record.id.to_string())
                .data(json),
        ),
        Err(e) => {
            tracing::warn!(id = %record.id, "activity stream: cannot serialise record: {e}");
            None
        }
    }
}
