//! Gemini at Google's own paths, `POST /v1beta/models/{model}:generateContent` and
//! `…:streamGenerateContent` (see `tests/fixtures/gemini*`). Every chunk of a stream is a
//! whole `GenerateContentResponse` with the cumulative `usageMetadata`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::Mock;
use crate::exchange::{Break, Dialect, Plan, Route};
use crate::stream::{self, Event};

const ROUTE: Route = Route {
    dialect: Dialect::Gemini,
    limits: &["/generationConfig/maxOutputTokens"],
};

const FAILURE: &str = r#"{"error": {"code": 500,"message": "An internal error has occurred (x-mock-error: mid-stream)","status": "INTERNAL"}}"#;

/// `/v1beta/models/{*rest}`: axum cannot match `{model}:method` in one segment, so the
/// method is what follows the last `:`.
pub(super) async fn generate(
    State(mock): State<Arc<Mock>>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = rest
        .rsplit_once(':')
        .filter(|(model, _)| !model.is_empty())
        .and_then(|(model, method)| match method {
            "generateContent" => Some((model, false)),
            "streamGenerateContent" => Some((model, true)),
            _ => None,
        });
    let Some((model, streamed)) = method else {
        let message = format!("models/{rest} is not found, or is not a supported method");
        return Dialect::Gemini.error(StatusCode::NOT_FOUND, &message, 0);
    };
    let plan = match Plan::read(&mock, ROUTE, &headers, &body, Some(model), Some(streamed)) {
        Ok(plan) => plan,
        Err(refusal) => return refusal.into_response(),
    };
    let sse = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    match (streamed, sse) {
        (false, _) => stream::json(&plan, chunk(&plan, plan.text(), plan.words, true)),
        (true, true) => stream::sse(events(&plan, "data: ", "\r\n\r\n", ""), plan.delay),
        // Without `alt=sse`: one JSON array, streamed element by element.
        (true, false) => stream::json_stream(events(&plan, ",\r\n", "", "]"), plan.delay),
    }
}

/// One `GenerateContentResponse` with `text`, the usage after `words` words, and the finish
/// reason when `last`. Spaced as Google's streams are.
fn chunk(plan: &Plan, text: &str, words: usize, last: bool) -> String {
    let finish = match (last, plan.truncated) {
        (false, _) => "",
        (true, false) => r#","finishReason": "STOP""#,
        (true, true) => r#","finishReason": "MAX_TOKENS""#,
    };
    let cached = match plan.cache_read {
        0 => String::new(),
        n => format!(r#","cachedContentTokenCount": {n}"#),
    };
    let input = plan.input;
    format!(
        r#"{{"candidates": [{{"content": {{"parts": [{{"text": "{text}"}}],"role": "model"}}{finish},"index": 0}}],"usageMetadata": {{"promptTokenCount": {input},"candidatesTokenCount": {words},"totalTokenCount": {}{cached}}},"modelVersion": {},"responseId": "mock-{}"}}"#,
        input + words as u64,
        plan.model,
        plan.seq
    )
}

/// The chunks, each framed `{before}{chunk}{after}` (the first array element without a
/// leading comma), then `close` unless the stream breaks off.
fn events(plan: &Plan, before: &str, after: &str, close: &str) -> Vec<Event> {
    let array = !close.is_empty();
    let mut events = Vec::with_capacity(plan.chunks + 2);
    for (i, (text, words)) in plan.pieces().enumerate() {
        let last = plan.fault.is_none() && i + 1 == plan.chunks;
        let before = if array && i == 0 { "[" } else { before };
        let chunk = chunk(plan, text, words, last);
        events.push(Event::later(format!("{before}{chunk}{after}")));
    }
    match plan.fault {
        Some(Break::MidStream) => {
            let close = if array { "]" } else { "" };
            events.push(Event::now(format!("{before}{FAILURE}{after}{close}")));
        }
        Some(Break::Cut) => {}
        None => {
            if array {
                events.push(Event::now(close.to_owned()));
            }
        }
    }
    events
}
