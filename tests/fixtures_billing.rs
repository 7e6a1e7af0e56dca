//! Every billable dimension through the whole layer (testkit's billing cases: one fixture per
//! dimension and wire format, the cost worked out by hand from LiteLLM 1.110.2), whole and in
//! 1-, 7- and 61-byte frames: the same exact cost, parts, tier and counts every time.

use testkit::billing::{self, Case};
use testkit::exchange::{Exchange, run};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRecord, Outcome, UsageSource};

async fn record_of(case: &Case, chunk: usize) -> ActivityRecord {
    let body = billing::fixture(case.fixture);
    let mut ex = Exchange::new(case.path, body.clone(), billing::is_sse(case.fixture)).chunk(chunk);
    if let Some(request) = case.request {
        ex = ex.request(request);
    }
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let seen = run(&layer, ex).await;
    assert_eq!(
        seen.received, body,
        "{}: the client gets the bytes unchanged",
        case.fixture
    );
    layer.writer().flush().await;
    let mut records = sink.records();
    assert_eq!(records.len(), 1, "{}", case.fixture);
    records.remove(0)
}

#[tokio::test]
async fn every_dimension_is_priced_exactly_under_any_framing() {
    for case in billing::cases() {
        for chunk in [0, 1, 7, 61] {
            let r = record_of(&case, chunk).await;
            assert_eq!(r.outcome, Outcome::Ok, "{} ({chunk})", case.fixture);
            assert_eq!(r.usage_source, UsageSource::Reported, "{}", case.fixture);
            billing::check(&case, &r, &format!("{chunk}-byte frames"));
        }
    }
}

#[tokio::test]
async fn the_requests_tier_stands_when_the_response_is_silent() {
    // openai-chat_stream_include-usage.sse names no service_tier; the request asked for flex.
    let body = billing::fixture("openai-chat_stream_include-usage.sse");
    let ex = Exchange::new("/v1/chat/completions", body, true).request(
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"service_tier":"flex","messages":[]}"#,
    );
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    run(&layer, ex).await;
    layer.writer().flush().await;
    let r = sink.records().remove(0);
    assert_eq!(r.service_tier.as_deref(), Some("flex"));
    // gpt-4o-2024-08-06 lists no flex prices: 9·0.0000025 + 2·0.00001, the standard rates.
    assert_eq!(r.cost_usd, Some("0.0000425".parse().unwrap()));

    // A response that names its tier wins over the request (openai-chat_priority.json).
    let body = billing::fixture("openai-chat_priority.json");
    let ex = Exchange::new("/v1/chat/completions", body, false)
        .request(r#"{"model":"gpt-5","service_tier":"auto","messages":[]}"#);
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    run(&layer, ex).await;
    layer.writer().flush().await;
    assert_eq!(sink.records()[0].service_tier.as_deref(), Some("priority"));
}

#[tokio::test]
async fn a_search_on_a_model_without_a_search_price_is_named_not_made_up() {
    // The web search response, answered by a model the table has no search price for.
    let body = String::from_utf8(billing::fixture("openai-responses_web-search.json"))
        .unwrap()
        .replace("gpt-5-2025-08-07", "gpt-4o-2024-08-06");
    let ex = Exchange::new("/v1/responses", body, false);
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    run(&layer, ex).await;
    layer.writer().flush().await;
    let r = sink.records().remove(0);
    assert_eq!(r.metadata["unpriced"], serde_json::json!(["web_search"]));
    assert_eq!(r.usage_details.unwrap()["web_search_requests"], 2);
    // 2500·0.0000025 + 300·0.00001: the tokens only.
    assert_eq!(r.cost_usd, Some("0.00925".parse().unwrap()));
}
