//! The mock upstream (`examples/mock-upstream/`) behind `ActivityLayer`: every API as
//! JSON and SSE gives a record with the mock's documented, deterministic token counts; its
//! error modes give the right outcomes; its streams pass through the layer unchanged.
//!
//! Every prompt below is `Be brief.` (9 characters) plus `Count the tokens of this prompt,
//! please.` (40): 49 characters, so ⌈49 / 4⌉ = 13 input tokens. The reply is 24 words (24
//! output tokens) unless the request sets a smaller limit.

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use mock_upstream::wire::*;
use mock_upstream::{MockConfig, router};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, ServiceExt};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRecord, FinishReason, Outcome, UsageSource};

fn request(path: &str, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = body.into();
    let mut request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(body)).expect("valid request")
}

fn api_request(api: Api, stream: bool, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut body = api.body(stream, None);
    if api == Chat && stream {
        // The client asks for usage itself: the layer changes nothing.
        body["stream_options"] = json!({"include_usage": true});
    }
    request(&api.path(stream), body.to_string(), headers)
}

/// What the client of the layer saw, and the record.
#[derive(Debug)]
struct Seen {
    status: StatusCode,
    body: Bytes,
    body_error: Option<String>,
    record: ActivityRecord,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Reads a body to its end or its error.
async fn read<B>(mut body: B) -> (Bytes, Option<String>)
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Err(e) => return (bytes.freeze(), Some(e.to_string())),
        }
    }
    (bytes.freeze(), None)
}

/// Sends `request` through `ActivityLayer` around a fresh mock.
async fn through_layer(config: MockConfig, request: Request<Full<Bytes>>) -> Seen {
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let service = layer.layer(router(config));
    let response = service.oneshot(request).await.expect("infallible");
    let status = response.status();
    let (body, body_error) = read(response.into_body()).await;
    layer.writer().flush().await;
    let mut records = sink.records();
    assert_eq!(records.len(), 1, "one record per request");
    Seen {
        status,
        body,
        body_error,
        record: records.remove(0),
    }
}

/// Sends `request` to a fresh mock directly.
async fn direct(config: MockConfig, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    let response = router(config).oneshot(request).await.expect("infallible");
    let status = response.status();
    let (body, error) = read(response.into_body()).await;
    assert_eq!(error, None);
    (status, body)
}

fn error_type(r: &ActivityRecord) -> Option<&str> {
    r.error.as_ref().and_then(|e| e.kind.as_deref())
}

#[tokio::test]
async fn every_api_as_json_and_sse_is_accounted_exactly() {
    for api in ALL {
        for stream in [false, true] {
            let name = format!("{api:?} stream={stream}");
            let seen = through_layer(MockConfig::default(), api_request(api, stream, &[])).await;
            let r = &seen.record;
            assert_eq!(seen.status, StatusCode::OK, "{name}");
            assert_eq!(r.outcome, Outcome::Ok, "{name}");
            assert_eq!(r.stream, stream, "{name}");
            assert_eq!(r.model.as_deref(), Some(api.model()), "{name}");
            assert_eq!(r.usage_source, UsageSource::Reported, "{name}");
            assert_eq!(r.input_tokens, Some(INPUT), "{name}");
            assert_eq!(r.output_tokens, Some(OUTPUT), "{name}");
            assert_eq!(r.total_tokens, Some(INPUT + OUTPUT), "{name}");
            assert_eq!(r.reasoning_tokens.unwrap_or(0), 0, "{name}");
            assert_eq!(r.finish_reason, Some(FinishReason::Stop), "{name}");
            assert_eq!(
                r.native_finish_reason.as_deref(),
                Some(api.native_finish(false)),
                "{name}"
            );
            assert_eq!(r.ttft_ms.is_some(), stream, "{name}: TTFT for streams only");
            assert!(r.cost_usd.is_some(), "{name}: a priced model");
            assert_eq!(r.error, None, "{name}");
            let text = std::str::from_utf8(&seen.body).expect("UTF-8");
            for word in ["The", "quick", "deterministic", "word."] {
                assert!(text.contains(word), "{name}: the reply is in the body");
            }
        }
    }
}

#[tokio::test]
async fn the_token_limit_cuts_the_reply_with_the_length_reason() {
    for api in ALL {
        for stream in [false, true] {
            let name = format!("{api:?} stream={stream}");
            let body = api.body(stream, Some(5)).to_string();
            let seen =
                through_layer(MockConfig::default(), request(&api.path(stream), body, &[])).await;
            let r = &seen.record;
            assert_eq!(r.outcome, Outcome::Ok, "{name}");
            assert_eq!(r.output_tokens, Some(5), "{name}");
            assert_eq!(r.input_tokens, Some(INPUT), "{name}");
            assert_eq!(r.finish_reason, Some(FinishReason::Length), "{name}");
            assert_eq!(
                r.native_finish_reason.as_deref(),
                Some(api.native_finish(true)),
                "{name}"
            );
        }
    }
    let body = Chat.body(false, Some(5)).to_string();
    let seen = through_layer(MockConfig::default(), request(&Chat.path(false), body, &[])).await;
    assert_eq!(
        seen.json()["choices"][0]["message"]["content"],
        "The quick brown fox jumps"
    );
}

#[tokio::test]
async fn max_completion_tokens_wins_over_max_tokens() {
    let mut body = Chat.body(false, Some(5));
    body["max_completion_tokens"] = json!(2);
    let seen = through_layer(
        MockConfig::default(),
        request(&Chat.path(false), body.to_string(), &[]),
    )
    .await;
    assert_eq!(seen.record.output_tokens, Some(2));
}

#[tokio::test]
async fn cache_reads_are_reported_as_part_of_the_input() {
    for api in ALL {
        for stream in [false, true] {
            let name = format!("{api:?} stream={stream}");
            let req = api_request(api, stream, &[("x-mock-cache-read", "8")]);
            let r = through_layer(MockConfig::default(), req).await.record;
            assert_eq!(r.input_tokens, Some(INPUT), "{name}");
            assert_eq!(r.cache_read_tokens, Some(8), "{name}");
        }
    }
}

#[tokio::test]
async fn injected_include_usage_is_accounted_and_invisible_to_the_client() {
    let body = Chat.body(true, None).to_string();
    let seen = through_layer(
        MockConfig::default(),
        request(&Chat.path(true), body.clone(), &[]),
    )
    .await;
    let r = &seen.record;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(r.usage_source, UsageSource::Reported);
    assert_eq!(
        (r.input_tokens, r.output_tokens),
        (Some(INPUT), Some(OUTPUT))
    );
    assert!(r.ttft_ms.is_some());

    let text = std::str::from_utf8(&seen.body).expect("UTF-8");
    assert!(!text.contains("usage"), "no usage chunk, no usage: null");
    assert!(text.ends_with("data: [DONE]\n\n"));
    // Exactly what the mock says to a client that did not ask for usage.
    let (_, unasked) = direct(MockConfig::default(), request(&Chat.path(true), body, &[])).await;
    assert_eq!(seen.body, unasked);
}

#[tokio::test]
async fn the_mock_output_passes_through_the_layer_byte_identical() {
    for api in ALL {
        for stream in [true, false] {
            let config = MockConfig {
                chunks: 5,
                ..MockConfig::default()
            };
            let seen = through_layer(config.clone(), api_request(api, stream, &[])).await;
            let (_, sent) = direct(config, api_request(api, stream, &[])).await;
            assert_eq!(seen.body, sent, "{api:?} stream={stream}");
        }
    }
}

#[tokio::test]
async fn gemini_without_alt_sse_streams_one_json_array() {
    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    let body = Gemini.body(true, None).to_string();
    let seen = through_layer(MockConfig::default(), request(path, body, &[])).await;
    let chunks = seen.json();
    assert_eq!(chunks.as_array().map(Vec::len), Some(8));
    assert_eq!(chunks[7]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[7]["usageMetadata"]["candidatesTokenCount"], OUTPUT);
    let r = &seen.record;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(
        (r.input_tokens, r.output_tokens),
        (Some(INPUT), Some(OUTPUT))
    );
}

#[tokio::test]
async fn chunks_and_delay_can_be_set_per_request() {
    let content = |body: &Bytes| {
        let text = std::str::from_utf8(body).expect("UTF-8");
        text.matches(r#""delta":{"content":"#).count()
    };
    let headers = [("x-mock-chunks", "3"), ("x-mock-delay-ms", "1")];
    let seen = through_layer(MockConfig::default(), api_request(Chat, true, &headers)).await;
    assert_eq!(content(&seen.body), 3);
    assert!(seen.record.ttft_ms.is_some());
    assert_eq!(seen.record.output_tokens, Some(OUTPUT));

    // Never more chunks than words.
    let body = Chat.body(true, Some(2)).to_string();
    let req = request(&Chat.path(true), body, &[("x-mock-chunks", "100")]);
    let seen = through_layer(MockConfig::default(), req).await;
    assert_eq!(content(&seen.body), 2);
}

#[tokio::test]
async fn an_error_status_has_the_provider_error_shape() {
    for (status, types) in [
        (
            "500",
            ["server_error", "server_error", "api_error", "INTERNAL"],
        ),
        (
            "429",
            [
                "requests",
                "requests",
                "rate_limit_error",
                "RESOURCE_EXHAUSTED",
            ],
        ),
    ] {
        for (api, kind) in ALL.into_iter().zip(types) {
            for stream in [false, true] {
                let name = format!("{api:?} {status} stream={stream}");
                let req = api_request(api, stream, &[("x-mock-error", status)]);
                let seen = through_layer(MockConfig::default(), req).await;
                assert_eq!(seen.status.as_str(), status, "{name}");
                let r = &seen.record;
                assert_eq!(r.outcome, Outcome::Error, "{name}");
                assert_eq!(r.finish_reason, Some(FinishReason::Error), "{name}");
                assert_eq!(error_type(r), Some(kind), "{name}");
                assert_eq!(r.output_tokens, None, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn a_mid_stream_error_is_an_error() {
    let types = [
        "server_error",
        "server_error",
        "overloaded_error",
        "INTERNAL",
    ];
    for (api, kind) in ALL.into_iter().zip(types) {
        let req = api_request(api, true, &[("x-mock-error", "mid-stream")]);
        let seen = through_layer(MockConfig::default(), req).await;
        let r = &seen.record;
        assert_eq!(seen.status, StatusCode::OK, "{api:?}");
        assert_eq!(r.outcome, Outcome::Error, "{api:?}");
        assert_eq!(error_type(r), Some(kind), "{api:?}");
        assert!(r.ttft_ms.is_some(), "{api:?}: content came first");
    }
}

#[tokio::test]
async fn a_cut_stream_is_interrupted() {
    for api in ALL {
        let req = api_request(api, true, &[("x-mock-error", "cut")]);
        let seen = through_layer(MockConfig::default(), req).await;
        assert_eq!(seen.body_error, None, "{api:?}: the body just ends");
        assert_eq!(seen.record.outcome, Outcome::Interrupted, "{api:?}");
        assert_eq!(seen.record.error, None, "{api:?}");
    }
}

#[tokio::test]
async fn a_broken_json_answer_fails_the_body() {
    for api in ALL {
        for mode in ["cut", "mid-stream"] {
            let req = api_request(api, false, &[("x-mock-error", mode)]);
            let seen = through_layer(MockConfig::default(), req).await;
            assert!(seen.body_error.is_some(), "{api:?} {mode}");
            assert!(!seen.body.is_empty(), "{api:?} {mode}: half the body came");
            assert_eq!(seen.record.outcome, Outcome::Interrupted, "{api:?} {mode}");
        }
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_in_the_provider_shape() {
    for api in ALL {
        for broken in [&b"{\"model\": "[..], b"[1, 2]", b"\xff\xfe"] {
            let seen = through_layer(
                MockConfig::default(),
                request(&api.path(false), broken, &[]),
            )
            .await;
            assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{api:?}");
            let body = seen.json();
            match api {
                Chat | Responses => assert_eq!(body["error"]["type"], "invalid_request_error"),
                Anthropic => {
                    assert_eq!(body["type"], "error");
                    assert_eq!(body["error"]["type"], "invalid_request_error");
                }
                Gemini => {
                    assert_eq!(body["error"]["code"], 400);
                    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
                }
            }
            assert_eq!(seen.record.outcome, Outcome::Error, "{api:?}");
            assert!(error_type(&seen.record).is_some(), "{api:?}");
        }
    }
}

#[tokio::test]
async fn bad_requests_and_bad_overrides_are_400s() {
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (r#"{"messages": []}"#, &[]),
        (r#"{"model": "m", "max_tokens": 0}"#, &[]),
        (r#"{"model": "m"}"#, &[("x-mock-chunks", "0")]),
        (r#"{"model": "m"}"#, &[("x-mock-delay-ms", "-1")]),
        (r#"{"model": "m"}"#, &[("x-mock-error", "200")]),
    ];
    for (body, headers) in cases {
        let (status, answer) = direct(
            MockConfig::default(),
            request("/v1/chat/completions", body, headers),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} {headers:?}");
        let answer: Value = serde_json::from_slice(&answer).expect("JSON");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
}

#[tokio::test]
async fn unknown_routes_and_gemini_methods_are_404s() {
    let cases = [
        ("/v1beta/models/gemini-2.5-flash:countTokens", "NOT_FOUND"),
        ("/v1beta/models/gemini-2.5-flash", "NOT_FOUND"),
        ("/v1/nothing", "invalid_request_error"),
    ];
    for (path, kind) in cases {
        let (status, body) = direct(MockConfig::default(), request(path, "{}", &[])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        let got = body["error"]["status"]
            .as_str()
            .or(body["error"]["type"].as_str());
        assert_eq!(got, Some(kind), "{path}");
    }
}

#[tokio::test]
async fn the_model_is_echoed_verbatim() {
    let model = r#"my "odd" model/é"#;
    for stream in [false, true] {
        let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
        let seen = through_layer(
            MockConfig::default(),
            request("/v1/chat/completions", body.to_string(), &[]),
        )
        .await;
        assert_eq!(seen.record.model.as_deref(), Some(model));
        assert_eq!(
            seen.record.input_tokens,
            Some(1),
            "2 characters: at least 1 token"
        );
    }
    let seen = through_layer(
        MockConfig::default(),
        request("/v1beta/models/gemma-3-27b-it:generateContent", "{}", &[]),
    )
    .await;
    assert_eq!(seen.json()["modelVersion"], "gemma-3-27b-it");
}

#[tokio::test]
async fn spawn_serves_streams_over_tcp() {
    let (addr, server) = mock_upstream::spawn(MockConfig::default())
        .await
        .expect("bind");
    let body = api_request(Anthropic, true, &[]).into_body();
    let body = body.collect().await.expect("infallible").to_bytes();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-mock-delay-ms: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    tcp.write_all(&body).await.expect("write");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("UTF-8");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("content-type: text/event-stream"),
        "{answer}"
    );
    assert_eq!(answer.matches("event: content_block_delta").count(), 8);
    assert!(answer.contains("event: message_stop"), "{answer}");
    server.abort();
}
