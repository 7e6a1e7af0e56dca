//! `POST /v1/responses`, shaped like OpenAI's Responses API (see
//! `tests/fixtures/openai-responses*`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::Mock;
use crate::exchange::{Break, CREATED, Dialect, Plan, Route};
use crate::stream::{self, Event, named};

const ROUTE: Route = Route {
    dialect: Dialect::OpenAi,
    limits: &["/max_output_tokens"],
};

const FAILURE: &str =
    "The server had an error while processing your request (x-mock-error: mid-stream)";

pub(super) async fn create(
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
        stream::json(&plan, response(&plan, End::Finished))
    }
}

/// Where the `response` object stands.
#[derive(Clone, Copy)]
enum End {
    Started,
    Finished,
    Failed,
}

/// `completed`, or `incomplete` when the reply was cut to `max_output_tokens`.
fn finished_status(plan: &Plan) -> &'static str {
    if plan.truncated {
        "incomplete"
    } else {
        "completed"
    }
}

/// The output message item with `content` (a JSON array).
fn message(plan: &Plan, status: &str, content: &str) -> String {
    format!(
        r#"{{"id":"msg_mock{}","type":"message","status":"{status}","content":{content},"role":"assistant"}}"#,
        plan.seq
    )
}

fn output_text(text: &str) -> String {
    format!(r#"{{"type":"output_text","annotations":[],"logprobs":[],"text":"{text}"}}"#)
}

/// The `response` object.
fn response(plan: &Plan, end: End) -> String {
    let (status, output, usage, incomplete, error) = match end {
        End::Started => (
            "in_progress",
            "[]".into(),
            "null".into(),
            "null",
            "null".into(),
        ),
        End::Failed => (
            "failed",
            "[]".into(),
            "null".into(),
            "null",
            format!(r#"{{"code":"server_error","message":"{FAILURE}"}}"#),
        ),
        End::Finished => {
            let status = finished_status(plan);
            let item = message(plan, status, &format!("[{}]", output_text(plan.text())));
            let (input, out) = (plan.input, plan.output());
            let usage = format!(
                r#"{{"input_tokens":{input},"input_tokens_details":{{"cached_tokens":{}}},"output_tokens":{out},"output_tokens_details":{{"reasoning_tokens":0}},"total_tokens":{}}}"#,
                plan.cache_read,
                input + out
            );
            let incomplete = if plan.truncated {
                r#"{"reason":"max_output_tokens"}"#
            } else {
                "null"
            };
            (
                status,
                format!("[{item}]"),
                usage,
                incomplete,
                "null".into(),
            )
        }
    };
    let limit = plan.limit.map_or("null".into(), |l| l.to_string());
    format!(
        r#"{{"id":"resp_mock{}","object":"response","created_at":{CREATED},"status":"{status}","error":{error},"incomplete_details":{incomplete},"instructions":null,"max_output_tokens":{limit},"model":{},"output":{output},"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{{"effort":null,"summary":null}},"store":true,"temperature":1.0,"text":{{"format":{{"type":"text"}}}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{usage},"user":null,"metadata":{{}}}}"#,
        plan.seq, plan.model
    )
}

/// The typed events of a streamed response, each with its `sequence_number`.
fn events(plan: &Plan) -> Vec<Event> {
    let mut events = Vec::with_capacity(plan.chunks + 8);
    let mut seq = 0u64;
    // `body` is the event's members after `type` and `sequence_number`.
    let mut event = |kind: &str, body: &str, later: bool| {
        let text = named(
            kind,
            &format!(r#"{{"type":"{kind}","sequence_number":{seq},{body}}}"#),
        );
        seq += 1;
        events.push(if later {
            Event::later(text)
        } else {
            Event::now(text)
        });
    };
    let item = format!(
        r#""item_id":"msg_mock{}","output_index":0,"content_index":0"#,
        plan.seq
    );

    let started = format!(r#""response":{}"#, response(plan, End::Started));
    event("response.created", &started, false);
    event("response.in_progress", &started, false);
    let added = message(plan, "in_progress", "[]");
    event(
        "response.output_item.added",
        &format!(r#""output_index":0,"item":{added}"#),
        false,
    );
    event(
        "response.content_part.added",
        &format!(r#"{item},"part":{}"#, output_text("")),
        false,
    );
    for (text, _) in plan.pieces() {
        let body = format!(r#"{item},"delta":"{text}","logprobs":[]"#);
        event("response.output_text.delta", &body, true);
    }
    match plan.fault {
        Some(Break::MidStream) => {
            let error = format!(
                r#""error":{{"type":"server_error","code":"server_error","message":"{FAILURE}","param":null}}"#
            );
            event("error", &error, false);
            let failed = format!(r#""response":{}"#, response(plan, End::Failed));
            event("response.failed", &failed, false);
        }
        Some(Break::Cut) => {}
        None => {
            let (text, status) = (plan.text(), finished_status(plan));
            event(
                "response.output_text.done",
                &format!(r#"{item},"text":"{text}","logprobs":[]"#),
                false,
            );
            event(
                "response.content_part.done",
                &format!(r#"{item},"part":{}"#, output_text(text)),
                false,
            );
            let done = message(plan, status, &format!("[{}]", output_text(text)));
            event(
                "response.output_item.done",
                &format!(r#""output_index":0,"item":{done}"#),
                false,
            );
            let finished = format!(r#""response":{}"#, response(plan, End::Finished));
            event(&format!("response.{status}"), &finished, false);
        }
    }
    events
}
