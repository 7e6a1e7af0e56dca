//! [`FakeLlm`]: an OpenAI-chat-compatible inner service whose usage is a pure function of the
//! request, so a budget test knows every request's exact cost in advance.
//!
//! - input tokens = ⌈characters of every `content` string / 4⌉ (the layer's own estimate);
//! - output tokens = the `x-fake-output: N` header (default 24), cut to `max_tokens`;
//! - `"stream": true` answers SSE: one chunk per output token, then a usage chunk and
//!   `[DONE]`; otherwise one JSON body;
//! - `x-fake: error` answers `500` with an OpenAI error body (no usage).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::framed::{Ending, FramedBody};

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeLlm;

/// Input tokens of a request body, as the fake (and the layer) count them.
pub fn input_tokens(body: &Value) -> u64 {
    fn walk(v: &Value, key: Option<&str>, total: &mut u64) {
        match v {
            Value::String(s) if key == Some("content") => *total += s.chars().count() as u64,
            Value::Array(items) => items.iter().for_each(|i| walk(i, key, total)),
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, Some(k), total)),
            _ => {}
        }
    }
    let mut chars = 0;
    walk(body, None, &mut chars);
    chars.div_ceil(4)
}

impl<B> tower::Service<Request<B>> for FakeLlm
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Debug,
{
    type Response = Response<FramedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await.expect("the request body").to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            if header("x-fake").as_deref() == Some("error") {
                let error = json!({"error": {"message": "boom", "type": "server_error"}});
                return Ok(Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .header("content-type", "application/json")
                    .body(one(error.to_string()))
                    .unwrap());
            }
            let model = body["model"].as_str().unwrap_or("gpt-4o-mini").to_owned();
            let mut output: u64 = header("x-fake-output")
                .and_then(|v| v.parse().ok())
                .unwrap_or(24);
            if let Some(max) = body["max_tokens"].as_u64() {
                output = output.min(max);
            }
            let usage = json!({"prompt_tokens": input_tokens(&body), "completion_tokens": output});
            if body["stream"].as_bool() == Some(true) {
                // One frame per event, so a client can go away mid-stream.
                let mut events = Vec::new();
                for _ in 0..output {
                    let chunk = json!({"model": model, "choices": [{"index": 0, "delta": {"content": "tick"}}]});
                    events.push(Bytes::from(format!("data: {chunk}\n\n")));
                }
                let finish = json!({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                events.push(Bytes::from(format!("data: {finish}\n\n")));
                let last = json!({"model": model, "choices": [], "usage": usage});
                events.push(Bytes::from(format!("data: {last}\n\ndata: [DONE]\n\n")));
                return Ok(Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(FramedBody::from_frames(events, Ending::Plain))
                    .unwrap());
            }
            let answer = json!({
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "tick"}, "finish_reason": "stop"}],
                "usage": usage,
            });
            Ok(Response::builder()
                .header("content-type", "application/json")
                .body(one(answer.to_string()))
                .unwrap())
        })
    }
}

fn one(text: String) -> FramedBody {
    FramedBody::new(Bytes::from(text), 0, Ending::Plain)
}
