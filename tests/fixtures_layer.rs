//! Every recorded provider response in `tests/fixtures/` through the whole layer: the record
//! matches the expectations of its `.source.txt` (tokens normalised per DESIGN §2, finish
//! reason, model, outcome, error) and its cost equals the price table's, exactly.

use bytes::Bytes;
use rust_decimal::Decimal;
use testkit::exchange::{Exchange, run};
use tower_activity::pricing::{PriceTable, TokenUsage};
use tower_activity::sink::MemorySink;
use tower_activity::{
    ActivityLayer, ActivityRecord, CostSource, FinishReason, Outcome, UsageSource,
};

/// Expected normalised values of one fixture.
#[derive(Debug, Clone, Copy, Default)]
struct Want {
    model: &'static str,
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    reasoning: Option<u64>,
    native_finish: Option<&'static str>,
    finish: Option<FinishReason>,
    outcome: Option<Outcome>,
    error_type: Option<&'static str>,
    status: Option<u16>,
    /// The cost when it is not the table's price of the five token counts: a provider's
    /// stated charge, or a dimension the counts alone do not price (audio …).
    cost: Option<&'static str>,
    /// The cost is the provider's stated charge.
    reported: bool,
}

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";

fn gemini(model: &str, stream: bool) -> String {
    let method = if stream {
        "streamGenerateContent"
    } else {
        "generateContent"
    };
    format!("/v1beta/models/{model}:{method}")
}

fn usage(input: u64, output: u64) -> Want {
    Want {
        input: Some(input),
        output: Some(output),
        ..Want::default()
    }
}

fn fixture(name: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if name.ends_with(".chunks.jsonl") {
        // One JSON payload per line, SSE framing removed: frame it as the wire does.
        let mut out = Vec::new();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("jsonl line");
            let kind = v["type"].as_str().expect("typed event");
            out.extend_from_slice(format!("event: {kind}\ndata: ").as_bytes());
            out.extend_from_slice(line);
            out.extend_from_slice(b"\n\n");
        }
        return out.into();
    }
    bytes.into()
}

async fn record_of(ex: Exchange) -> ActivityRecord {
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let sent = ex.response.clone();
    let seen = run(&layer, ex).await;
    assert_eq!(
        seen.received, sent,
        "the client receives the bytes unchanged"
    );
    layer.writer().flush().await;
    let mut records = sink.records();
    assert_eq!(records.len(), 1, "exactly one record per exchange");
    records.remove(0)
}

/// A stated charge: the table's figure (when the model is priced) is beside it.
fn continue_with_reported(name: &str, r: &ActivityRecord, table: Option<Decimal>) {
    let computed = r
        .cost_details
        .as_ref()
        .and_then(|d| d.get("computed"))
        .copied();
    assert_eq!(
        computed, table,
        "{name}: the table's figure beside the stated one"
    );
    if table.is_none() {
        assert_eq!(r.metadata["pricing"], "unknown_model", "{name}");
    }
}

fn check(name: &str, r: &ActivityRecord, w: Want) {
    assert_eq!(r.model.as_deref(), Some(w.model), "{name}: model");
    assert_eq!(r.input_tokens, w.input, "{name}: input_tokens");
    assert_eq!(r.output_tokens, w.output, "{name}: output_tokens");
    assert_eq!(
        r.cache_read_tokens, w.cache_read,
        "{name}: cache_read_tokens"
    );
    assert_eq!(
        r.cache_write_tokens, w.cache_write,
        "{name}: cache_write_tokens"
    );
    assert_eq!(r.reasoning_tokens, w.reasoning, "{name}: reasoning_tokens");
    let total = w.input.zip(w.output).map(|(i, o)| i + o);
    assert_eq!(r.total_tokens, total, "{name}: total_tokens");
    assert_eq!(
        r.native_finish_reason.as_deref(),
        w.native_finish,
        "{name}: native finish"
    );
    let finish = w
        .finish
        .or_else(|| w.native_finish.map(FinishReason::normalise));
    assert_eq!(r.finish_reason, finish, "{name}: finish_reason");
    assert_eq!(
        r.outcome,
        w.outcome.unwrap_or(Outcome::Ok),
        "{name}: outcome"
    );
    assert_eq!(
        r.error.as_ref().and_then(|e| e.kind.as_deref()),
        w.error_type,
        "{name}: error type"
    );
    assert_eq!(
        r.status_code,
        Some(w.status.unwrap_or(200)),
        "{name}: status"
    );
    if w.input.is_some() || w.output.is_some() {
        assert_eq!(
            r.usage_source,
            UsageSource::Reported,
            "{name}: usage_source"
        );
        let plain = PriceTable::default().cost(
            w.model,
            &TokenUsage {
                input: w.input.unwrap_or(0),
                output: w.output.unwrap_or(0),
                cache_read: w.cache_read.unwrap_or(0),
                cache_write: w.cache_write.unwrap_or(0),
                reasoning: w.reasoning.unwrap_or(0),
                ..TokenUsage::default()
            },
        );
        let expected = w.cost.map(|c| c.parse().unwrap()).or(plain);
        assert_eq!(r.cost_usd, expected, "{name}: cost_usd");
        let source = if w.reported {
            CostSource::Reported
        } else {
            CostSource::Computed
        };
        assert_eq!(
            r.cost_source,
            expected.map(|_| source),
            "{name}: cost_source"
        );
        let parts_sum = |details: &tower_activity::CostDetails| {
            details
                .iter()
                .filter(|(k, _)| *k != "computed")
                .map(|(_, v)| *v)
                .sum::<Decimal>()
        };
        match (r.cost_source, r.cost_details.as_ref()) {
            (Some(CostSource::Computed), Some(parts)) => {
                assert_eq!(Some(parts_sum(parts)), r.cost_usd, "{name}: parts add up");
            }
            (Some(CostSource::Computed), None) => panic!("{name}: a computed cost has parts"),
            (Some(CostSource::Reported), Some(parts)) => {
                assert_eq!(parts.get("computed"), Some(&parts_sum(parts)), "{name}");
            }
            _ => {}
        }
        if w.reported {
            continue_with_reported(name, r, plain);
            return;
        }
        match expected {
            Some(cost) => {
                // A free model (LiteLLM lists `gemini-2.0-flash-exp` at $0) costs exactly 0;
                // any other priced request costs more than 0.
                let table = PriceTable::default();
                let (_, price) = table.lookup(w.model).expect("priced");
                let free = price.input.is_zero() && price.output.is_zero();
                assert_eq!(
                    cost.is_zero(),
                    free,
                    "{name}: cost {cost} vs price {price:?}"
                );
            }
            None => assert_eq!(r.metadata["pricing"], "unknown_model", "{name}"),
        }
    }
}

fn cases() -> Vec<(&'static str, String, Want)> {
    use FinishReason as F;
    vec![
        // --- JSON bodies
        (
            "anthropic.json",
            MESSAGES.into(),
            Want {
                model: "claude-sonnet-4-5-20250929",
                cache_read: Some(1111),
                cache_write: Some(418),
                native_finish: Some("end_turn"),
                ..usage(3 + 418 + 1111, 33)
            },
        ),
        (
            "gemini.json",
            gemini("gemini-2.5-flash", false),
            Want {
                model: "gemini-2.5-flash",
                cache_read: Some(17379),
                reasoning: Some(821),
                native_finish: Some("STOP"),
                // Audio in and cached at their own prices (tests/pricing_dimensions.rs works
                // it out); at text prices it was 0.00284407.
                cost: Some("0.00300094"),
                ..usage(17713, 68 + 821)
            },
        ),
        (
            "gemini_max-tokens.json",
            gemini("gemini-2.5-pro", false),
            Want {
                model: "gemini-2.5-pro",
                reasoning: Some(2),
                native_finish: Some("MAX_TOKENS"),
                finish: Some(F::Length),
                ..usage(15, 2)
            },
        ),
        (
            "openai-chat.json",
            CHAT.into(),
            Want {
                model: "gpt-4.1-nano-2025-04-14",
                cache_read: Some(0),
                reasoning: Some(0),
                native_finish: Some("stop"),
                ..usage(16, 363)
            },
        ),
        (
            "openai-chat_cached.json",
            CHAT.into(),
            Want {
                model: "gpt-5.6-sol",
                cache_read: Some(4012),
                cache_write: Some(0),
                reasoning: Some(0),
                native_finish: Some("stop"),
                ..usage(4020, 4)
            },
        ),
        (
            "openai-chat_reasoning.json",
            CHAT.into(),
            Want {
                model: "o3-mini-2025-01-31",
                cache_read: Some(0),
                reasoning: Some(768),
                native_finish: Some("stop"),
                ..usage(11, 809)
            },
        ),
        (
            "openai-responses.json",
            RESPONSES.into(),
            Want {
                model: "gpt-5-2025-08-07",
                cache_read: Some(1280),
                reasoning: Some(64),
                native_finish: Some("completed"),
                ..usage(1493, 125)
            },
        ),
        // --- SSE streams
        (
            "anthropic_stream.sse",
            MESSAGES.into(),
            Want {
                model: "claude-sonnet-4-5-20250929",
                cache_read: Some(0),
                cache_write: Some(0),
                native_finish: Some("end_turn"),
                ..usage(20, 5)
            },
        ),
        (
            "anthropic_stream_basic.sse",
            MESSAGES.into(),
            Want {
                model: "claude-3-opus-latest",
                native_finish: Some("end_turn"),
                ..usage(11, 6)
            },
        ),
        (
            "anthropic_stream_cache-compaction.sse",
            MESSAGES.into(),
            Want {
                model: "claude-sonnet-4-6",
                cache_read: Some(0),
                cache_write: Some(0),
                native_finish: Some("end_turn"),
                ..usage(181, 8)
            },
        ),
        (
            "anthropic_stream_thinking.sse",
            MESSAGES.into(),
            Want {
                model: "claude-sonnet-4-20250514",
                cache_read: Some(0),
                cache_write: Some(0),
                native_finish: Some("end_turn"),
                ..usage(43, 282)
            },
        ),
        (
            "deepseek_stream.sse",
            CHAT.into(),
            Want {
                model: "deepseek-reasoner",
                cache_read: Some(0),
                reasoning: Some(198),
                native_finish: Some("stop"),
                ..usage(6, 212)
            },
        ),
        (
            "gemini_stream.sse",
            gemini("gemini-2.5-flash", true),
            Want {
                model: "gemini-2.5-flash",
                reasoning: Some(35),
                native_finish: Some("STOP"),
                ..usage(18, 80 + 35)
            },
        ),
        (
            "gemini_stream_basic.sse",
            gemini("gemini-2.0-flash-exp", true),
            Want {
                model: "gemini-2.0-flash-exp",
                native_finish: Some("STOP"),
                ..usage(13, 8)
            },
        ),
        (
            "gemini_stream_thinking.sse",
            gemini("gemini-2.5-pro", true),
            Want {
                model: "gemini-2.5-pro",
                reasoning: Some(787),
                native_finish: Some("STOP"),
                ..usage(34, 469 + 787)
            },
        ),
        (
            "groq_stream_x-groq-usage.sse",
            CHAT.into(),
            Want {
                model: "openai/gpt-oss-120b",
                reasoning: Some(23),
                native_finish: Some("tool_calls"),
                ..usage(304, 49)
            },
        ),
        (
            "mistral_stream.sse",
            CHAT.into(),
            Want {
                model: "magistral-medium-latest",
                native_finish: Some("stop"),
                ..usage(10, 232)
            },
        ),
        (
            "openai-chat_stream_finish-length.sse",
            CHAT.into(),
            Want {
                model: "gpt-4o-2024-08-06",
                reasoning: Some(0),
                native_finish: Some("length"),
                ..usage(79, 1)
            },
        ),
        (
            "openai-chat_stream_include-usage.sse",
            CHAT.into(),
            Want {
                model: "gpt-4o-2024-08-06",
                reasoning: Some(0),
                native_finish: Some("stop"),
                ..usage(9, 2)
            },
        ),
        (
            "openai-chat_stream_include-usage_tool-calls.sse",
            CHAT.into(),
            Want {
                model: "gpt-4o-mini-2024-07-18",
                cache_read: Some(0),
                reasoning: Some(0),
                native_finish: Some("tool_calls"),
                ..usage(53, 15)
            },
        ),
        (
            "openai-chat_stream_n3.sse",
            CHAT.into(),
            Want {
                model: "gpt-4o-2024-08-06",
                reasoning: Some(0),
                native_finish: Some("stop"),
                ..usage(79, 42)
            },
        ),
        (
            "openai-chat_stream_usage-then-moderation.sse",
            CHAT.into(),
            Want {
                model: "gpt-5-2025-08-07",
                cache_read: Some(0),
                reasoning: Some(0),
                native_finish: Some("stop"),
                ..usage(13, 11)
            },
        ),
        (
            "openai-responses_stream.sse",
            RESPONSES.into(),
            Want {
                model: "gpt-4o-2024-08-06",
                cache_read: Some(0),
                reasoning: Some(0),
                native_finish: Some("completed"),
                ..usage(278, 9)
            },
        ),
        (
            "openai-responses_stream_reasoning.sse",
            RESPONSES.into(),
            Want {
                model: "gpt-5-2025-08-07",
                cache_read: Some(0),
                reasoning: Some(448),
                native_finish: Some("completed"),
                // Served on the flex tier: 53·0.000000625 + 469·0.000005 (the standard
                // rates gave 0.00475625, double).
                cost: Some("0.002378125"),
                ..usage(53, 469)
            },
        ),
        (
            "openai-responses_stream_tool-call.sse",
            RESPONSES.into(),
            Want {
                model: "gpt-4o-2024-08-06",
                cache_read: Some(0),
                reasoning: Some(0),
                native_finish: Some("completed"),
                ..usage(255, 16)
            },
        ),
        (
            "openai-responses_stream_cached-reasoning.chunks.jsonl",
            RESPONSES.into(),
            Want {
                model: "gpt-5.3-codex",
                cache_read: Some(3072),
                reasoning: Some(64),
                native_finish: Some("completed"),
                ..usage(7112, 463)
            },
        ),
        (
            "openrouter_stream_usage-cost.sse",
            CHAT.into(),
            Want {
                model: "anthropic/claude-sonnet-4.5",
                cache_read: Some(0),
                reasoning: Some(13),
                native_finish: Some("stop"),
                // OpenRouter's `usage.cost` (the table says the same: 43·0.000003 +
                // 36·0.000015).
                cost: Some("0.000669"),
                reported: true,
                ..usage(43, 36)
            },
        ),
        (
            "openrouter_stream_error.sse",
            CHAT.into(),
            Want {
                model: "minimax/minimax-m2:free",
                cache_read: Some(0),
                reasoning: Some(11),
                native_finish: Some("length"),
                // A free model: OpenRouter states a charge of 0 (the table has no price).
                cost: Some("0"),
                reported: true,
                outcome: Some(Outcome::Error),
                error_type: Some("400"),
                ..usage(43, 10)
            },
        ),
    ]
}

fn is_sse(name: &str) -> bool {
    name.ends_with(".sse") || name.ends_with(".jsonl")
}

#[tokio::test]
async fn every_successful_fixture_is_accounted_exactly() {
    for (name, path, want) in cases() {
        let ex = Exchange::new(&path, fixture(name), is_sse(name));
        let r = record_of(ex).await;
        check(name, &r, want);
        assert_eq!(r.stream, is_sse(name), "{name}: stream");
        assert_eq!(r.endpoint, path, "{name}: endpoint");
        if r.stream && r.outcome == Outcome::Ok {
            assert!(
                r.ttft_ms.is_some(),
                "{name}: a stream with output has a TTFT"
            );
        }
    }
}

#[tokio::test]
async fn error_bodies_give_error_records_with_the_providers_error() {
    let cases = [
        (
            "anthropic_error_400.json",
            MESSAGES.to_owned(),
            400,
            "invalid_request_error",
            "This model does not support effort level",
        ),
        (
            "gemini_error_429.json",
            gemini("gemini-2.5-flash", false),
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota",
        ),
        (
            "openai-chat_error_400.json",
            CHAT.to_owned(),
            400,
            "invalid_request_error",
            "Unsupported parameter: 'max_tokens'",
        ),
        (
            "openai-error_429_insufficient-quota.json",
            CHAT.to_owned(),
            429,
            "insufficient_quota",
            "You exceeded your current quota",
        ),
        (
            "openai-responses_error_400.json",
            RESPONSES.to_owned(),
            400,
            "invalid_request_error",
            "Invalid 'temperature'",
        ),
    ];
    for (name, path, status, kind, message) in cases {
        let ex = Exchange::new(&path, fixture(name), false).status(status);
        let r = record_of(ex).await;
        assert_eq!(r.outcome, Outcome::Error, "{name}");
        assert_eq!(r.status_code, Some(status), "{name}");
        assert_eq!(r.finish_reason, Some(FinishReason::Error), "{name}");
        let error = r.error.as_ref().unwrap_or_else(|| panic!("{name}: error"));
        assert_eq!(error.kind.as_deref(), Some(kind), "{name}");
        assert!(
            error.message.starts_with(message),
            "{name}: {}",
            error.message
        );
        assert_eq!(r.usage_source, UsageSource::None, "{name}");
        assert_eq!((r.input_tokens, r.cost_usd), (None, None), "{name}");
    }
}

#[tokio::test]
async fn in_band_stream_errors_are_errors() {
    // Groq: `event: error` after 90 chunks of output, no usage, no [DONE].
    let r = record_of(Exchange::new(
        CHAT,
        fixture("groq_stream_error-event.sse"),
        true,
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Error);
    assert_eq!(r.model.as_deref(), Some("openai/gpt-oss-120b"));
    assert_eq!(
        r.error.as_ref().and_then(|e| e.kind.as_deref()),
        Some("invalid_request_error")
    );
    assert!(
        r.error
            .as_ref()
            .is_some_and(|e| e.message.starts_with("Tool call validation failed"))
    );
    assert_eq!(r.finish_reason, Some(FinishReason::Error));
    assert_eq!(
        r.usage_source,
        UsageSource::Estimated,
        "output was streamed before the error"
    );
    assert!(r.output_tokens.is_some_and(|n| n > 0));

    // Responses: an `error` event then `response.failed`, nothing generated.
    let r = record_of(Exchange::new(
        RESPONSES,
        fixture("openai-responses_stream_failed.chunks.jsonl"),
        true,
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Error);
    assert_eq!(r.model.as_deref(), Some("gpt-5-nano-2025-08-07"));
    assert_eq!(
        r.error.as_ref().and_then(|e| e.kind.as_deref()),
        Some("insufficient_quota")
    );
    assert_eq!(r.finish_reason, Some(FinishReason::Error));
    assert_eq!(r.usage_source, UsageSource::None);
    assert_eq!(r.output_tokens, None, "nothing streamed: unknown, not 0");
}

#[tokio::test]
async fn a_stream_without_usage_is_estimated_from_text() {
    let request = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"Say hello in a friendly way, please."}]}"#;
    let ex = Exchange::new(CHAT, fixture("openai-chat_stream_no-usage.sse"), true).request(request);
    let r = record_of(ex).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(r.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.usage_source, UsageSource::Estimated);
    // "Say hello in a friendly way, please." is 36 characters: 9 tokens at 4 per token.
    assert_eq!(r.input_tokens, Some(9));
    assert!(r.output_tokens.is_some_and(|n| n > 0));
    assert!(r.cost_usd.is_some(), "estimated usage is still priced");
}

#[tokio::test]
async fn openrouter_cost_is_kept_exactly_in_metadata() {
    let r = record_of(Exchange::new(
        CHAT,
        fixture("openrouter_stream_usage-cost.sse"),
        true,
    ))
    .await;
    assert_eq!(r.metadata["provider_cost_usd"], "0.000669");
}
