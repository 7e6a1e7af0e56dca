//! `POST /v1/chat/completions`, shaped like OpenAI's answers (see
//! `tests/fixtures/openai-chat*.{json,sse}`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::Mock;
use crate::exchange::{Break, CREATED, Dialect, Plan, Route};
use crate::stream::{self, Event, data};

const ROUTE: Route = Route {
    dialect: Dialect::OpenAi,
    limits: &["/max_completion_tokens", "/max_tokens"],
};

pub(super) async fn completions(
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
        stream::json(&plan, completion(&plan))
    }
}

fn finish_reason(plan: &Plan) -> &'static str {
    if plan.truncated { "length" } else { "stop" }
}

fn usage(plan: &Plan) -> String {
    let (input, output) = (plan.input, plan.output());
    format!(
        r#"{{"prompt_tokens":{input},"completion_tokens":{output},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
        input + output,
        plan.cache_read
    )
}

/// The `chat.completion` object.
fn completion(plan: &Plan) -> String {
    format!(
        r#"{{"id":"chatcmpl-mock-{}","object":"chat.completion","created":{CREATED},"model":{},"choices":[{{"index":0,"message":{{"role":"assistant","content":"{}","refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":"{}"}}],"usage":{},"service_tier":"default","system_fingerprint":"fp_mock"}}"#,
        plan.seq,
        plan.model,
        plan.text(),
        finish_reason(plan),
        usage(plan),
    )
}

/// Role chunk, content chunks, finish chunk, the usage chunk when asked, `[DONE]`.
fn events(plan: &Plan) -> Vec<Event> {
    let head = format!(
        r#"{{"id":"chatcmpl-mock-{}","object":"chat.completion.chunk","created":{CREATED},"model":{},"system_fingerprint":"fp_mock","choices":"#,
        plan.seq, plan.model
    );
    // With include_usage the API adds `"usage":null` to every chunk but the last.
    let tail = if plan.include_usage {
        r#","usage":null}"#
    } else {
        "}"
    };
    let chunk = |choices: &str| data(&format!("{head}{choices}{tail}"));

    let mut events = Vec::with_capacity(plan.chunks + 4);
    events.push(Event::now(chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
    )));
    for (text, _) in plan.pieces() {
        events.push(Event::later(chunk(&format!(
            r#"[{{"index":0,"delta":{{"content":"{text}"}},"logprobs":null,"finish_reason":null}}]"#
        ))));
    }
    match plan.fault {
        Some(Break::MidStream) => events.push(Event::now(data(
            r#"{"error":{"message":"The server had an error while processing your request (x-mock-error: mid-stream)","type":"server_error","param":null,"code":null}}"#,
        ))),
        Some(Break::Cut) => {}
        None => {
            events.push(Event::now(chunk(&format!(
                r#"[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{}"}}]"#,
                finish_reason(plan)
            ))));
            if plan.include_usage {
                events.push(Event::now(data(&format!(
                    r#"{head}[],"usage":{}}}"#,
                    usage(plan)
                ))));
            }
            events.push(Event::now("data: [DONE]\n\n"));
        }
    }
    events
}
