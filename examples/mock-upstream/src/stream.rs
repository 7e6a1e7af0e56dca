//! Response bodies sent piece by piece: each event is its own frame, content events after
//! the configured delay, so a client sees the first token when a real one would.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::exchange::{Break, Plan};

/// One frame of a streamed answer.
#[derive(Debug)]
pub(super) struct Event {
    bytes: Bytes,
    /// Sent after the delay (a content chunk), or at once (the events around them).
    pause: bool,
}

impl Event {
    /// An event sent at once.
    pub(super) fn now(bytes: impl Into<Bytes>) -> Self {
        Event {
            bytes: bytes.into(),
            pause: false,
        }
    }

    /// An event sent after the delay.
    pub(super) fn later(bytes: impl Into<Bytes>) -> Self {
        Event {
            bytes: bytes.into(),
            pause: true,
        }
    }
}

/// `data: {json}` and a blank line (`\n` framing, as OpenAI does).
pub(super) fn data(json: &str) -> String {
    format!("data: {json}\n\n")
}

/// `event: {name}`, `data: {json}` and a blank line (Responses and Anthropic).
pub(super) fn named(name: &str, json: &str) -> String {
    format!("event: {name}\ndata: {json}\n\n")
}

/// An SSE response sending `events` one frame each.
pub(super) fn sse(events: Vec<Event>, delay: Duration) -> Response {
    let headers = [
        (CONTENT_TYPE, "text/event-stream; charset=utf-8"),
        (CACHE_CONTROL, "no-cache"),
    ];
    (headers, paced(events, delay, None)).into_response()
}

/// A streamed JSON response (Gemini's `streamGenerateContent` without `alt=sse`).
pub(super) fn json_stream(events: Vec<Event>, delay: Duration) -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        paced(events, delay, None),
    )
        .into_response()
}

/// A JSON response; when the plan breaks off, half of it and then a body error.
pub(super) fn json(plan: &Plan, body: String) -> Response {
    let headers = [(CONTENT_TYPE, "application/json")];
    match plan.fault {
        None => (headers, body).into_response(),
        Some(how) => {
            let mut half = body.len() / 2;
            while !body.is_char_boundary(half) {
                half -= 1;
            }
            let why = match how {
                Break::MidStream => "mock upstream: failed mid-body (x-mock-error: mid-stream)",
                Break::Cut => "mock upstream: connection cut (x-mock-error: cut)",
            };
            let events = vec![Event::now(body[..half].to_owned())];
            (headers, paced(events, Duration::ZERO, Some(why))).into_response()
        }
    }
}

/// A body yielding `events` (waiting `delay` before each `later` one), then `fail` as an
/// error if given.
fn paced(events: Vec<Event>, delay: Duration, fail: Option<&'static str>) -> Body {
    let stream = futures_util::stream::unfold(
        (events.into_iter(), fail),
        move |(mut events, fail)| async move {
            match events.next() {
                Some(event) => {
                    // No timer at all for a zero delay: load tests run with it.
                    if event.pause && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((Ok(event.bytes), (events, fail)))
                }
                None => {
                    let why = fail?;
                    // Give the server a turn to flush what was sent before the failure.
                    tokio::task::yield_now().await;
                    Some((Err(std::io::Error::other(why)), (events, None)))
                }
            }
        },
    );
    Body::from_stream(stream)
}
