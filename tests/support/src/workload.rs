//! The fixed exchanges the benches run through the layer: a 1 KB JSON chat completion, a
//! 100-event stream in each wire format, and the mock upstream's short OpenAI chat stream
//! (12 events, the one the load test and the gateway's profiles run), one event per frame, as
//! the providers send them. `benches/layer.rs` times them; `benches/instructions.rs` counts
//! their instructions.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt, service_fn};
use tower_activity::ActivityRequestBody;

use crate::framed::{Ending, FramedBody};

/// One exchange: the request the client sends and the frames the upstream answers with.
#[derive(Debug, Clone)]
pub struct Workload {
    /// A short name for tables and baselines (`json_openai_chat`, `sse_anthropic` …).
    pub name: &'static str,
    /// The request path (it picks the wire format).
    pub path: &'static str,
    /// The request body.
    pub request: Bytes,
    /// The response's content type.
    pub content_type: &'static str,
    /// The response body, frame by frame.
    pub frames: Vec<Bytes>,
    /// What the layer's cost is divided by: SSE events for a stream, 1 for a JSON answer.
    pub units: usize,
}

/// What the fake upstream's future is: ready at once.
pub type Answer = std::future::Ready<Result<Response<FramedBody>, Infallible>>;

impl Workload {
    /// The fake upstream: answers every request at once with the workload's frames.
    pub fn upstream(
        &self,
    ) -> impl Service<
        Request<ActivityRequestBody<Full<Bytes>>>,
        Response = Response<FramedBody>,
        Error = Infallible,
        Future = Answer,
    > + Clone
    + use<> {
        self.upstream_for()
    }

    /// [`upstream`](Self::upstream) for a request whose body arrives as `B`: behind the
    /// budget layer and the activity layer, read by both, it is wrapped twice.
    pub fn upstream_for<B>(
        &self,
    ) -> impl Service<
        Request<B>,
        Response = Response<FramedBody>,
        Error = Infallible,
        Future = Answer,
    > + Clone
    + use<B> {
        // Shared, so that cloning the service costs what a real client's clone does (an `Arc`),
        // not a copy of every frame: the layer clones its inner service once per request.
        let frames: Arc<[Bytes]> = self.frames.clone().into();
        let content_type = self.content_type;
        service_fn(move |_req: Request<B>| {
            let body = FramedBody::from_frames(frames.to_vec(), Ending::Plain);
            std::future::ready(Ok(Response::builder()
                .header("content-type", content_type)
                .body(body)
                .expect("valid response")))
        })
    }

    /// The client's request.
    pub fn request(&self) -> Request<Full<Bytes>> {
        Request::post(self.path)
            .header("content-type", "application/json")
            .header("content-length", self.request.len())
            .body(Full::new(self.request.clone()))
            .expect("valid request")
    }
}

/// One exchange straight to `upstream` (its request body passed through, as the layer does
/// for requests it does not read); returns the response body.
pub async fn bare<S>(upstream: &S, workload: &Workload) -> Bytes
where
    S: Service<
            Request<ActivityRequestBody<Full<Bytes>>>,
            Response = Response<FramedBody>,
            Error = Infallible,
        > + Clone,
{
    let (parts, body) = workload.request().into_parts();
    let request = Request::from_parts(parts, ActivityRequestBody::passthrough(body));
    let response = upstream.clone().oneshot(request).await.expect("infallible");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// One exchange through `layered` (the upstream behind the layer); returns the response body.
pub async fn layered<S, B>(layered: &S, workload: &Workload) -> Bytes
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = layered
        .clone()
        .oneshot(workload.request())
        .await
        .expect("infallible");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

const PROMPT: &str = "Write a short poem about tower middleware.";

/// Every workload: the JSON request, then the streams (OpenAI chat twice: with the usage the
/// client asked for, and stripped of the usage the layer asked for; the mock's short stream
/// the same two ways).
pub fn all() -> Vec<Workload> {
    vec![
        json_openai_chat(),
        sse_openai_chat(),
        sse_openai_chat_stripped(),
        sse_openai_chat_short(),
        sse_openai_chat_short_stripped(),
        sse_openai_responses(),
        sse_anthropic(),
        sse_gemini(),
    ]
}

/// The workload called `name`.
pub fn by_name(name: &str) -> Option<Workload> {
    all().into_iter().find(|w| w.name == name)
}

fn data(json: String) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

fn named(event: &str, json: String) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
}

/// A 1 KB OpenAI chat completion.
pub fn json_openai_chat() -> Workload {
    let content = "lorem ipsum dolor sit amet ".repeat(25);
    let body = format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":120,"completion_tokens":170,"total_tokens":290,"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#,
        &content[..content.len().min(700)]
    );
    Workload {
        name: "json_openai_chat",
        path: "/v1/chat/completions",
        request: Bytes::from(format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{PROMPT}"}}]}}"#
        )),
        content_type: "application/json",
        frames: vec![Bytes::from(body)],
        units: 1,
    }
}

/// An OpenAI chat stream workload of `frames`, answering a streamed chat request that asks for
/// the usage itself (`stream_options.include_usage`) when `usage_asked`, else one the layer
/// adds it to and strips it from.
fn chat_stream(name: &'static str, frames: Vec<Bytes>, usage_asked: bool) -> Workload {
    let options = if usage_asked {
        r#""stream_options":{"include_usage":true},"#
    } else {
        ""
    };
    Workload {
        name,
        path: "/v1/chat/completions",
        request: Bytes::from(format!(
            r#"{{"model":"gpt-4o-mini","stream":true,{options}"messages":[{{"role":"user","content":"{PROMPT}"}}]}}"#
        )),
        content_type: "text/event-stream",
        units: frames.len(),
        frames,
    }
}

/// An OpenAI chat stream: a role chunk, 96 content chunks, the finish chunk, the usage chunk
/// the client asked for, `[DONE]`.
pub fn sse_openai_chat() -> Workload {
    let chunk = |delta: &str, finish: &str| {
        data(format!(
            r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
        ))
    };
    let mut frames = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..96 {
        frames.push(chunk(&format!(r#"{{"content":" word{i}"}}"#), "null"));
    }
    frames.push(chunk("{}", r#""stop""#));
    frames.push(data(
        r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":97,"total_tokens":217}}"#.into(),
    ));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chat_stream("sse_openai_chat", frames, true)
}

/// The OpenAI chat stream of a client that did not ask for usage: the layer asks for it
/// (`stream_options.include_usage`), so the upstream adds `"usage":null` to each chunk and sends
/// the usage chunk, and the layer strips both from what the client receives (`src/strip.rs`,
/// the one path that rewrites response bytes). 100 events, as in [`sse_openai_chat`].
pub fn sse_openai_chat_stripped() -> Workload {
    let chunk = |delta: &str, finish: &str| {
        data(format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}],"usage":null}}"#
        ))
    };
    let mut frames = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..96 {
        frames.push(chunk(&format!(r#"{{"content":" word{i}"}}"#), "null"));
    }
    frames.push(chunk("{}", r#""stop""#));
    frames.push(data(
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":97,"total_tokens":217}}"#.into(),
    ));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chat_stream("sse_openai_chat_stripped", frames, false)
}

/// The mock upstream's OpenAI chat stream (`examples/mock-upstream/src/openai_chat.rs`, its
/// default 24-word reply in 8 content chunks) as it answers a request with
/// `stream_options.include_usage`: a role chunk, 8 content chunks, the finish chunk, each with
/// `"usage":null`, the usage chunk, `[DONE]`. 12 events: what one load-test stream costs,
/// set-up and learning included.
fn short_chat_frames() -> Vec<Bytes> {
    const REPLY: &str = "The quick brown fox jumps over the lazy dog while the mock upstream \
                         streams a steady deterministic reply of exactly one token per word.";
    let words: Vec<&str> = REPLY.split(' ').collect();
    let head = r#"{"id":"chatcmpl-mock-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","system_fingerprint":"fp_mock","choices":"#;
    let chunk = |choices: &str| data(format!(r#"{head}{choices},"usage":null}}"#));
    let mut frames = vec![chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
    )];
    for (i, words) in words.chunks(3).enumerate() {
        let text = words.join(" ");
        let text = if i == 0 { text } else { format!(" {text}") };
        frames.push(chunk(&format!(
            r#"[{{"index":0,"delta":{{"content":"{text}"}},"logprobs":null,"finish_reason":null}}]"#
        )));
    }
    frames.push(chunk(
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#,
    ));
    frames.push(data(format!(
        r#"{head}[],"usage":{{"prompt_tokens":12,"completion_tokens":24,"total_tokens":36,"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}}}"#
    )));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

/// The mock's short stream (`short_chat_frames`) for a client that asked for the usage
/// itself: passed through as it is.
pub fn sse_openai_chat_short() -> Workload {
    chat_stream("sse_openai_chat_short", short_chat_frames(), true)
}

/// The same stream for a client that did not ask for usage (the load test's and the c=8
/// run's requests): the layer strips what it asked for. Its figure less
/// [`sse_openai_chat_short`]'s is the strip's cost per event of a short stream.
pub fn sse_openai_chat_short_stripped() -> Workload {
    chat_stream("sse_openai_chat_short_stripped", short_chat_frames(), false)
}

/// A Responses stream: created, in progress, the item and part opening, 92 text deltas, the
/// text, part and item closing, completed with usage.
pub fn sse_openai_responses() -> Workload {
    let response = |status: &str, usage: &str| {
        format!(
            r#"{{"id":"resp_1","object":"response","created_at":1,"status":"{status}","model":"gpt-4o-2024-08-06","output":[],"usage":{usage}}}"#
        )
    };
    let mut frames = vec![
        named(
            "response.created",
            format!(
                r#"{{"type":"response.created","sequence_number":0,"response":{}}}"#,
                response("in_progress", "null")
            ),
        ),
        named(
            "response.in_progress",
            format!(
                r#"{{"type":"response.in_progress","sequence_number":1,"response":{}}}"#,
                response("in_progress", "null")
            ),
        ),
        named(
            "response.output_item.added",
            r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}"#.into(),
        ),
        named(
            "response.content_part.added",
            r#"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}"#.into(),
        ),
    ];
    for i in 0..92 {
        frames.push(named(
            "response.output_text.delta",
            format!(
                r#"{{"type":"response.output_text.delta","sequence_number":{},"item_id":"msg_1","output_index":0,"content_index":0,"delta":" word{i}"}}"#,
                i + 4
            ),
        ));
    }
    frames.push(named(
        "response.output_text.done",
        r#"{"type":"response.output_text.done","sequence_number":96,"item_id":"msg_1","output_index":0,"content_index":0,"text":"…"}"#.into(),
    ));
    frames.push(named(
        "response.content_part.done",
        r#"{"type":"response.content_part.done","sequence_number":97,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":"…"}}"#.into(),
    ));
    frames.push(named(
        "response.output_item.done",
        r#"{"type":"response.output_item.done","sequence_number":98,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","content":[],"role":"assistant"}}"#.into(),
    ));
    frames.push(named(
        "response.completed",
        format!(
            r#"{{"type":"response.completed","sequence_number":99,"response":{}}}"#,
            response(
                "completed",
                r#"{"input_tokens":120,"input_tokens_details":{"cached_tokens":0},"output_tokens":92,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":212}"#
            )
        ),
    ));
    Workload {
        name: "sse_openai_responses",
        path: "/v1/responses",
        request: Bytes::from(format!(
            r#"{{"model":"gpt-4o","stream":true,"input":"{PROMPT}"}}"#
        )),
        content_type: "text/event-stream",
        units: frames.len(),
        frames,
    }
}

/// An Anthropic stream: message start, block start, 95 text deltas, block stop, message
/// delta with the usage, message stop.
pub fn sse_anthropic() -> Workload {
    let mut frames = vec![
        named(
            "message_start",
            r#"{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_1","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":120,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}"#.into(),
        ),
        named(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.into(),
        ),
    ];
    for i in 0..95 {
        frames.push(named(
            "content_block_delta",
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":" word{i}"}}}}"#
            ),
        ));
    }
    frames.push(named(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#.into(),
    ));
    frames.push(named(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":95}}"#.into(),
    ));
    frames.push(named("message_stop", r#"{"type":"message_stop"}"#.into()));
    Workload {
        name: "sse_anthropic",
        path: "/v1/messages",
        request: Bytes::from(format!(
            r#"{{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{{"role":"user","content":"{PROMPT}"}}]}}"#
        )),
        content_type: "text/event-stream",
        units: frames.len(),
        frames,
    }
}

/// A Gemini stream (`alt=sse`, CRLF-framed as Google does): 100 chunks, each with the
/// cumulative usage, the last with the finish reason.
pub fn sse_gemini() -> Workload {
    let frames: Vec<Bytes> = (0..100)
        .map(|i| {
            let finish = if i == 99 { r#","finishReason":"STOP""# } else { "" };
            Bytes::from(format!(
                "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \" word{i}\"}}],\"role\": \"model\"}}{finish},\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": 120,\"candidatesTokenCount\": {},\"totalTokenCount\": {}}},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}}\r\n\r\n",
                i + 1,
                i + 121
            ))
        })
        .collect();
    Workload {
        name: "sse_gemini",
        path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        request: Bytes::from(format!(
            r#"{{"contents":[{{"role":"user","parts":[{{"text":"{PROMPT}"}}]}}]}}"#
        )),
        content_type: "text/event-stream",
        units: frames.len(),
        frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Exchange, run_frames};
    use tower_activity::sink::MemorySink;
    use tower_activity::{ActivityLayer, Outcome, UsageSource};

    #[test]
    fn every_stream_has_one_hundred_events_and_names_are_unique() {
        let all = all();
        for w in &all {
            assert_eq!(w.frames.len(), w.units, "{}", w.name);
            if w.content_type == "text/event-stream" {
                let events = if w.name.contains("_short") { 12 } else { 100 };
                assert_eq!(w.units, events, "{}", w.name);
            }
        }
        let mut names: Vec<_> = all.iter().map(|w| w.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert_eq!(by_name("sse_gemini").map(|w| w.units), Some(100));
    }

    /// The benches measure the layer's real path: each workload is a complete, priced exchange.
    #[tokio::test]
    async fn each_workload_gives_a_complete_priced_record() {
        let sink = MemorySink::new();
        let layer = ActivityLayer::new(sink.clone());
        for w in all() {
            let sse = w.content_type == "text/event-stream";
            let ex = Exchange::new(w.path, Bytes::new(), sse).request(w.request.clone());
            let seen = run_frames(&layer, ex, w.frames.clone()).await;
            let mut sent: Vec<u8> = w.frames.iter().flat_map(|f| f.to_vec()).collect();
            if w.name.ends_with("_stripped") {
                // What the layer asked for is not what the client receives.
                let usage = &w.frames[w.frames.len() - 2];
                let text = String::from_utf8(sent).unwrap();
                let text = text.replace(std::str::from_utf8(usage).unwrap(), "");
                sent = text.replace(r#","usage":null"#, "").into_bytes();
                assert_eq!(
                    sent.len() + usage.len() + (w.units - 2) * 13,
                    w.frames.iter().map(|f| f.len()).sum::<usize>()
                );
            }
            assert_eq!(&seen.received[..], &sent[..], "{}: passed through", w.name);
        }
        layer.writer().flush().await;
        let records = sink.records();
        assert_eq!(records.len(), all().len());
        for (r, w) in records.iter().zip(all()) {
            assert_eq!(r.outcome, Outcome::Ok, "{}: {r:?}", w.name);
            assert_eq!(r.usage_source, UsageSource::Reported, "{}", w.name);
            assert!(r.cost_usd.is_some(), "{}: priced", w.name);
        }
    }
}
