//! `POST /v1/messages`, shaped like Anthropic's Messages API (see
//! `tests/fixtures/anthropic*`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::Mock;
use crate::exchange::{Break, Dialect, Plan, Route};
use crate::stream::{self, Event, named};

const ROUTE: Route = Route {
    dialect: Dialect::Anthropic,
    limits: &["/max_tokens"],
};

pub(super) async fn messages(
    State(mock): State<Arc<Mock>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let plan = match Plan::read(&mock, ROUTE, &headers, &body, None, None) {
        Ok(plan) => plan,
        Err(refusal) => return refusal.into_response(),
    };
    if plan.stream {
        stream::sse(events(&plan), plan.delay)
    } else {
        stream::json(&plan, message(&plan))
    }
}

fn stop_reason(plan: &Plan) -> &'static str {
    if plan.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// Anthropic's usage: `input_tokens` excludes the cache reads, which have their own count.
fn usage(plan: &Plan, output: u64) -> String {
    format!(
        r#"{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":{},"output_tokens":{output}}}"#,
        plan.input - plan.cache_read,
        plan.cache_read
    )
}

/// The message object.
fn message(plan: &Plan) -> String {
    format!(
        r#"{{"id":"msg_mock{}","type":"message","role":"assistant","model":{},"content":[{{"type":"text","text":"{}"}}],"stop_reason":"{}","stop_sequence":null,"usage":{}}}"#,
        plan.seq,
        plan.model,
        plan.text(),
        stop_reason(plan),
        usage(plan, plan.output())
    )
}

/// `message_start` (1 output token so far), a text block with the content deltas, a `ping`,
/// `message_delta` with the stop reason and the final (cumulative) usage, `message_stop`.
fn events(plan: &Plan) -> Vec<Event> {
    let mut events = Vec::with_capacity(plan.chunks + 6);
    events.push(Event::now(named(
        "message_start",
        &format!(
            r#"{{"type":"message_start","message":{{"id":"msg_mock{}","type":"message","role":"assistant","model":{},"content":[],"stop_reason":null,"stop_sequence":null,"usage":{}}}}}"#,
            plan.seq,
            plan.model,
            usage(plan, 1)
        ),
    )));
    events.push(Event::now(named(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    )));
    events.push(Event::now(named("ping", r#"{"type": "ping"}"#)));
    for (text, _) in plan.pieces() {
        events.push(Event::later(named(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{text}"}}}}"#
            ),
        )));
    }
    match plan.fault {
        Some(Break::MidStream) => events.push(Event::now(named(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ))),
        Some(Break::Cut) => {}
        None => {
            events.push(Event::now(named(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            )));
            events.push(Event::now(named(
                "message_delta",
                &format!(
                    r#"{{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":null}},"usage":{}}}"#,
                    stop_reason(plan),
                    usage(plan, plan.output())
                ),
            )));
            events.push(Event::now(named(
                "message_stop",
                r#"{"type":"message_stop"}"#,
            )));
        }
    }
    events
}
