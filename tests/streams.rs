//! Stream mechanics through the whole layer: any framing gives the same record, the record is
//! written exactly once on every way a body can end, cancelled streams, include_usage
//! injection, and hostile bodies.

use bytes::Bytes;
use proptest::prelude::*;
use testkit::exchange::{Exchange, run};
use testkit::framed::Ending;
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRecord, FinishReason, Outcome, UsageSource};

const CHAT: &str = "/v1/chat/completions";

const SSE_FIXTURES: &[(&str, &str)] = &[
    ("anthropic_stream.sse", "/v1/messages"),
    ("anthropic_stream_basic.sse", "/v1/messages"),
    ("anthropic_stream_cache-compaction.sse", "/v1/messages"),
    ("anthropic_stream_thinking.sse", "/v1/messages"),
    ("deepseek_stream.sse", CHAT),
    (
        "gemini_stream.sse",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    ),
    (
        "gemini_stream_basic.sse",
        "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent",
    ),
    (
        "gemini_stream_thinking.sse",
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
    ),
    ("groq_stream_error-event.sse", CHAT),
    ("groq_stream_x-groq-usage.sse", CHAT),
    ("mistral_stream.sse", CHAT),
    ("openai-chat_stream_finish-length.sse", CHAT),
    ("openai-chat_stream_include-usage.sse", CHAT),
    ("openai-chat_stream_include-usage_tool-calls.sse", CHAT),
    ("openai-chat_stream_n3.sse", CHAT),
    ("openai-chat_stream_no-usage.sse", CHAT),
    ("openai-chat_stream_usage-then-moderation.sse", CHAT),
    ("openai-responses_stream.sse", "/v1/responses"),
    ("openai-responses_stream_reasoning.sse", "/v1/responses"),
    ("openai-responses_stream_tool-call.sse", "/v1/responses"),
    ("openrouter_stream_error.sse", CHAT),
    ("openrouter_stream_usage-cost.sse", CHAT),
    // The billing fixtures (issue 11): tiers, cache lifetimes, tools, modalities, long context.
    ("openai-chat_stream_priority.sse", CHAT),
    ("openai-chat_stream_audio.sse", CHAT),
    ("openai-responses_stream_long-context.sse", "/v1/responses"),
    ("openai-responses_stream_web-search.sse", "/v1/responses"),
    ("anthropic_stream_cache-1h.sse", "/v1/messages"),
    ("anthropic_stream_web-search.sse", "/v1/messages"),
    (
        "gemini_stream_audio.sse",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    ),
];

fn fixture(name: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `ex` and returns every record written plus what the client saw.
async fn records(ex: Exchange) -> (Vec<ActivityRecord>, testkit::exchange::Seen) {
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let seen = run(&layer, ex).await;
    layer.writer().flush().await;
    (sink.records(), seen)
}

async fn one(ex: Exchange) -> (ActivityRecord, testkit::exchange::Seen) {
    let (mut rs, seen) = records(ex).await;
    assert_eq!(rs.len(), 1, "exactly one record");
    (rs.remove(0), seen)
}

/// The record without the fields that differ between runs (ids, clocks).
fn stable(mut r: ActivityRecord) -> serde_json::Value {
    r.id = uuid::Uuid::nil();
    r.timestamp = chrono::DateTime::UNIX_EPOCH;
    r.ttft_ms = r.ttft_ms.map(|_| 0.0);
    r.latency_ms = None;
    r.speed = r.speed.map(|_| 0.0);
    serde_json::to_value(r).expect("serialisable")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// DESIGN §3: any split of the same bytes into frames yields the same record.
    #[test]
    fn any_framing_of_a_fixture_gives_the_same_record(
        which in 0..SSE_FIXTURES.len(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        single_bytes in any::<bool>(),
    ) {
        let (name, path) = SSE_FIXTURES[which];
        let body = fixture(name);
        let rt = runtime();
        let (whole, _) = rt.block_on(one(Exchange::new(path, body.clone(), true)));
        let frames: Vec<Bytes> = if single_bytes {
            (0..body.len()).map(|i| body.slice(i..i + 1)).collect()
        } else {
            let mut idx: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            idx.sort_unstable();
            let mut last = 0;
            let mut frames = Vec::new();
            for i in idx { frames.push(body.slice(last..i)); last = i; }
            frames.push(body.slice(last..));
            frames
        };
        let sink = MemorySink::new();
        let framed = rt.block_on(async {
            let layer = ActivityLayer::new(sink.clone());
            let seen = testkit::exchange::run_frames(&layer, Exchange::new(path, body.clone(), true), frames).await;
            layer.writer().flush().await;
            seen
        });
        prop_assert_eq!(&framed.received, &body);
        let rs = sink.records();
        prop_assert_eq!(rs.len(), 1);
        prop_assert_eq!(stable(rs[0].clone()), stable(whole));
    }
}

#[tokio::test]
async fn the_record_is_written_once_on_every_ending() {
    let body = fixture("openai-chat_stream_include-usage.sse");
    for ending in [
        Ending::Plain,
        Ending::EndStream,
        Ending::Trailers,
        Ending::Error("connection reset".into()),
    ] {
        for chunk in [0, 7] {
            let ex = Exchange::new(CHAT, body.clone(), true)
                .chunk(chunk)
                .ending(ending.clone());
            let (r, seen) = one(ex).await;
            assert_eq!(seen.received, body, "{ending:?}");
            match &ending {
                Ending::Error(_) => {
                    assert_eq!(r.outcome, Outcome::Interrupted, "{ending:?}");
                    assert_eq!(r.metadata["body_error"], "connection reset");
                    assert!(
                        seen.error.is_some(),
                        "the client sees the body error unchanged"
                    );
                }
                _ => {
                    assert_eq!(r.outcome, Outcome::Ok, "{ending:?} chunk {chunk}");
                    assert_eq!(r.output_tokens, Some(2), "{ending:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn an_empty_body_is_recorded_without_being_polled() {
    // A body already at its end is never polled by hyper; the record must not wait for a poll.
    let ex = Exchange::new("/healthz", Bytes::new(), false).ending(Ending::EndStream);
    let (r, _) = one(ex).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(r.api, tower_activity::LlmApi::Unknown);
    assert_eq!(r.usage_source, UsageSource::None);
}

#[tokio::test]
async fn a_client_going_away_mid_stream_gives_one_cancelled_record_with_estimated_usage() {
    let body = fixture("anthropic_stream_thinking.sse");
    let request = r#"{"model":"claude-sonnet-4-20250514","stream":true,"messages":[{"role":"user","content":"Explain the Pythagorean theorem."}]}"#;
    let ex = Exchange::new("/v1/messages", body.clone(), true)
        .request(request)
        .chunk(512)
        .drop_after(body.len() / 2);
    let (r, seen) = one(ex).await;
    assert!(seen.received.len() < body.len());
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(r.finish_reason, Some(FinishReason::Cancelled));
    assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-20250514"));
    // message_start reported the input (kept) and 1 output token, which was only true at the
    // start: the output is estimated from the text that reached the client instead.
    assert_eq!(r.input_tokens, Some(43));
    assert_eq!(r.usage_source, UsageSource::Estimated);
    assert!(
        r.output_tokens.is_some_and(|n| n > 1 && n < 282),
        "{:?}",
        r.output_tokens
    );

    // An OpenAI stream cut before its usage chunk: estimated from the text that went through.
    let body = fixture("openai-chat_stream_n3.sse");
    let ex = Exchange::new(CHAT, body.clone(), true)
        .chunk(64)
        .drop_after(body.len() / 2);
    let (r, _) = one(ex).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(r.usage_source, UsageSource::Estimated);
    let out = r.output_tokens.expect("estimated output");
    assert!(
        out > 0 && out < 42,
        "partial text, fewer tokens than the whole answer: {out}"
    );
}

#[tokio::test]
async fn a_stream_cut_before_its_terminal_marker_is_interrupted() {
    let body = fixture("openai-responses_stream.sse");
    let cut = body.slice(..body.len() * 2 / 3);
    let (r, seen) = one(Exchange::new("/v1/responses", cut.clone(), true)).await;
    assert_eq!(seen.received, cut);
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert_eq!(r.usage_source, UsageSource::Estimated);
}

#[tokio::test]
async fn a_json_body_cut_short_has_unknown_output_and_no_cost() {
    // Half a chat.completion, then a reset: the request's prompt gives an input estimate, but
    // nothing of the answer can be counted, so output and cost are unknown — never 0.
    let body = fixture("openai-chat.json");
    let cut = body.slice(..body.len() / 2);
    let request = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Count the tokens of this prompt, please."}]}"#;
    for ending in [Ending::Error("connection reset".into()), Ending::Plain] {
        let ex = Exchange::new(CHAT, cut.clone(), false)
            .request(request)
            .ending(ending.clone());
        let (r, seen) = one(ex).await;
        assert_eq!(seen.received, cut, "{ending:?}");
        assert_eq!(r.output_tokens, None, "{ending:?}");
        assert_eq!(r.total_tokens, None, "{ending:?}");
        assert_eq!(r.cost_usd, None, "{ending:?}");
        if let Ending::Error(_) = ending {
            assert_eq!(r.outcome, Outcome::Interrupted);
            assert_eq!(r.usage_source, UsageSource::Estimated);
            assert_eq!(r.input_tokens, Some(10), "40 prompt characters / 4");
        }
    }

    // The client going away from a JSON body: cancelled, output unknown as well.
    let ex = Exchange::new(CHAT, body.clone(), false)
        .request(request)
        .chunk(64)
        .drop_after(64);
    let (r, _) = one(ex).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!((r.output_tokens, r.cost_usd), (None, None));
}

#[tokio::test]
async fn include_usage_is_injected_and_the_client_stream_is_unchanged() {
    // What the provider sends when the request asks for usage (newer API: `"usage":null` on
    // every chunk, plus the usage-only chunk), and what it sends when it does not.
    let with_usage = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi there\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n",
        "data: [DONE]\n\n",
    );
    let without_usage = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi there\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let request =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    for chunk in [0, 1, 5, 64] {
        let ex = Exchange::new(CHAT, with_usage, true)
            .request(request)
            .chunk(chunk);
        let (r, seen) = one(ex).await;
        let upstream: serde_json::Value = serde_json::from_slice(&seen.upstream_request).unwrap();
        assert_eq!(
            upstream["stream_options"]["include_usage"], true,
            "the upstream sees the flag"
        );
        assert_eq!(upstream["messages"][0]["content"], "hi");
        assert_eq!(
            std::str::from_utf8(&seen.received).unwrap(),
            without_usage,
            "chunk {chunk}: the client gets what it would have got without the rewrite"
        );
        assert_eq!(seen.headers.get(http::header::CONTENT_LENGTH), None);
        assert_eq!((r.input_tokens, r.output_tokens), (Some(12), Some(3)));
        assert_eq!(r.usage_source, UsageSource::Reported);
        assert_eq!(r.outcome, Outcome::Ok);
    }

    // A client that asked for usage itself gets everything, untouched.
    let asked = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let ex = Exchange::new(CHAT, with_usage, true)
        .request(asked)
        .chunk(3);
    let (_, seen) = one(ex).await;
    assert_eq!(&seen.received[..], with_usage.as_bytes());
    assert_eq!(
        &seen.upstream_request[..],
        asked.as_bytes(),
        "the request is not rewritten"
    );

    // The real (older) capture: only the usage chunk is removed.
    let body = fixture("openai-chat_stream_include-usage.sse");
    let ex = Exchange::new(CHAT, body.clone(), true)
        .request(request)
        .chunk(17);
    let (r, seen) = one(ex).await;
    let expected: Vec<&str> = std::str::from_utf8(&body)
        .unwrap()
        .split_inclusive("\n\n")
        .filter(|e| !e.contains("\"choices\":[],\"usage\""))
        .collect();
    assert_eq!(
        std::str::from_utf8(&seen.received).unwrap(),
        expected.concat()
    );
    assert_eq!(r.output_tokens, Some(2));
}

#[tokio::test]
async fn a_request_with_stream_options_is_edited_in_place() {
    let with_usage = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\n",
        "data: [DONE]\n\n",
    );
    // Keys out of order, a big integer, `1e0`, escapes, spacing: none of it may change.
    let request = "{\"stream\":true, \"seed\":12345678901234567890123,\"temperature\":1e0,\n \"stream_options\":{\"include_usage\":false},\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9\\/\"}]}";
    let (r, seen) = one(Exchange::new(CHAT, with_usage, true).request(request)).await;
    assert_eq!(
        std::str::from_utf8(&seen.upstream_request).unwrap(),
        request.replace("\"include_usage\":false", "\"include_usage\":true"),
        "one member's value changed, nothing else"
    );
    assert_eq!(
        std::str::from_utf8(&seen.received).unwrap(),
        concat!(
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ),
        "a client that asked include_usage: false gets no usage chunk"
    );
    assert_eq!((r.input_tokens, r.output_tokens), (Some(2), Some(1)));
}

#[tokio::test]
async fn a_rewritten_stream_loses_only_what_the_flag_added() {
    // The issue's case: comments and a 2 MiB content event (over the 1 MiB line cap) before
    // the usage chunk. All of it reaches the client but the usage chunk and `"usage":null`.
    let big = "x".repeat(2 << 20);
    let upstream = format!(
        ": keep-alive\r\n\r\ndata: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{big}\"}},\"finish_reason\":\"stop\"}}],\"usage\":null}}\r\n\r\n: keep-alive\r\n\
         data: {{\"id\":\"c\",\"choices\":[],\"usage\":{{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}}}\r\n\r\n\
         data: [DONE]\r\n\r\n"
    );
    let want = format!(
        ": keep-alive\r\n\r\ndata: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{big}\"}},\"finish_reason\":\"stop\"}}]}}\r\n\r\n: keep-alive\r\n\
         data: [DONE]\r\n\r\n"
    );
    let request = r#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#;
    for chunk in [0, 7, 65_536] {
        let ex = Exchange::new(CHAT, upstream.clone(), true)
            .request(request)
            .chunk(chunk);
        let (r, seen) = one(ex).await;
        assert_eq!(seen.received.len(), want.len(), "chunk {chunk}");
        assert!(
            seen.received == want.as_bytes(),
            "chunk {chunk}: bytes differ"
        );
        assert_eq!((r.input_tokens, r.output_tokens), (Some(2), Some(1)));
    }
}

#[tokio::test]
async fn injection_can_be_switched_off() {
    let sink = MemorySink::new();
    let layer = ActivityLayer::builder(sink.clone())
        .include_usage(false)
        .build();
    let request = r#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#;
    let body = fixture("openai-chat_stream_no-usage.sse");
    let seen = run(
        &layer,
        Exchange::new(CHAT, body.clone(), true).request(request),
    )
    .await;
    assert_eq!(&seen.upstream_request[..], request.as_bytes());
    assert_eq!(seen.received, body);
    layer.writer().flush().await;
    assert_eq!(sink.records()[0].usage_source, UsageSource::Estimated);
}

#[tokio::test]
async fn hostile_bodies_pass_through_unchanged_without_panics() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let long_line = format!("data: {{\"x\":\"{}\"}}\n\n", "a".repeat(3 << 20));
    let cases: Vec<(&str, Bytes, bool, u16)> = vec![
        (CHAT, Bytes::from(garbage.clone()), true, 200),
        (CHAT, Bytes::from(garbage.clone()), false, 200),
        (
            "/v1/messages",
            Bytes::from_static(b"data: {not json}\n\ndata: {\"type\":\"message_stop\"\n\n"),
            true,
            200,
        ),
        (
            "/v1/responses",
            Bytes::from_static(b"{\"usage\": 12"),
            false,
            200,
        ),
        (
            "/v1/responses",
            Bytes::from_static(b"<html>502 Bad Gateway</html>"),
            false,
            502,
        ),
        (CHAT, Bytes::from(long_line), true, 200),
    ];
    for (path, body, sse, status) in cases {
        let ex = Exchange::new(path, body.clone(), sse)
            .status(status)
            .chunk(1000);
        let (r, seen) = one(ex).await;
        assert_eq!(
            seen.received, body,
            "{path}: bytes reach the client unchanged"
        );
        if status != 200 {
            assert_eq!(r.outcome, Outcome::Error);
            assert_eq!(r.error, None, "an HTML body carries no provider error");
        } else if sse {
            assert_eq!(
                r.outcome,
                Outcome::Interrupted,
                "{path}: no terminal marker"
            );
        }
    }
}

#[tokio::test]
async fn oversize_sse_lines_are_noted() {
    let sink = MemorySink::new();
    // The fixture's longest line is 362 bytes: under the cap; the padding line is over it.
    let layer = ActivityLayer::builder(sink.clone())
        .max_sse_line(512)
        .build();
    let body = format!(
        "data: {{\"pad\":\"{}\"}}\n\n{}",
        "x".repeat(2000),
        String::from_utf8(fixture("openai-chat_stream_include-usage.sse").to_vec()).unwrap()
    );
    let seen = run(&layer, Exchange::new(CHAT, body.clone(), true).chunk(10)).await;
    assert_eq!(&seen.received[..], body.as_bytes());
    layer.writer().flush().await;
    let r = &sink.records()[0];
    assert_eq!(r.metadata["sse_lines_skipped"], 1);
    assert_eq!(
        r.output_tokens,
        Some(2),
        "the events after the long line are still read"
    );
}

#[tokio::test]
async fn encoded_bodies_are_not_parsed_as_text() {
    // Plain bytes labelled gzip: the decoder refuses them; they are never read as text.
    let body = fixture("openai-chat.json");
    let ex = Exchange::new(CHAT, body.clone(), false).header("content-encoding", "gzip");
    let (r, seen) = one(ex).await;
    assert_eq!(seen.received, body);
    assert_eq!(r.usage_source, UsageSource::None);
    assert_eq!(r.input_tokens, None);
    let why = r.metadata["usage_unavailable"].as_str().unwrap();
    assert!(
        why.starts_with("content-encoding: gzip (cannot decode"),
        "{why}"
    );
}
