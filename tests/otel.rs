//! `OtelSink` against a real OTLP/HTTP receiver (protobuf decoded with `opentelemetry-proto`):
//! one span per record whose attributes equal the stored row, `traceparent` as the parent,
//! unknown counts absent, GenAI metrics that add up to the rows, and a database that keeps
//! every record while the collector is down or refusing.

use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use testkit::exchange::{Exchange, run};
use testkit::otlp::{
    OtlpReceiver, assert_span_is_row, closed_endpoint, counter_points, hex, histogram_sum, str_attr,
};
use tower_activity::sink::{FanOut, MemorySink, OtelSink};
use tower_activity::{
    ActivityLayer, ActivityRecord, ActivityWriter, Outcome, RecordKind, WriterConfig, WriterStats,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config() -> WriterConfig {
    WriterConfig::default()
        .with_batch_interval(Duration::from_millis(10))
        .with_retry_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(50))
}

fn otel(endpoint: &str) -> OtelSink {
    OtelSink::builder()
        .endpoint(endpoint)
        .service_name("otel-test")
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a valid configuration")
}

fn stats_of(writer: &ActivityWriter, name: &str) -> WriterStats {
    writer.sink_stats_of(name).expect("a sink of that name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_span_whose_attributes_equal_its_row() {
    let receiver = OtlpReceiver::start().await;
    let otel = otel(&receiver.endpoint());
    let database = MemorySink::new();
    let (layer, guard) = ActivityLayer::builder(
        FanOut::new()
            .sink("database", database.clone())
            .sink("otlp", otel.clone()),
    )
    .writer_config(config())
    .pair();

    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    let exchanges = [
        Exchange::new("/v1/messages", fixture("anthropic.json"), false)
            .request_header("traceparent", &traceparent),
        Exchange::new(
            "/v1/chat/completions",
            fixture("openai-chat_cached.json"),
            false,
        ),
        Exchange::new(
            "/v1/chat/completions",
            fixture("openai-chat_reasoning.json"),
            false,
        ),
        Exchange::new(
            "/v1/messages",
            fixture("anthropic_stream_thinking.sse"),
            true,
        ),
        Exchange::new(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            fixture("gemini_error_429.json"),
            false,
        )
        .status(429),
        // A malformed traceparent is ignored, not half-used.
        Exchange::new("/v1/chat/completions", fixture("openai-chat.json"), false)
            .request_header("traceparent", "00-xyz-01"),
    ];
    let count = exchanges.len();
    for ex in exchanges {
        run(&layer, ex).await;
    }
    let stats = guard.shutdown(Duration::from_secs(10)).await;
    assert_eq!((stats.written, stats.failed), (2 * count as u64, 0));

    let rows = database.records();
    let spans = receiver.spans();
    assert_eq!(rows.len(), count);
    assert_eq!(spans.len(), count, "one span per request");
    for row in &rows {
        let id = row.id.to_string();
        let span = spans
            .iter()
            .find(|s| str_attr(s, "activity.id") == Some(&id))
            .unwrap_or_else(|| panic!("no span for {id}"));
        assert_span_is_row(span, row);
    }

    // The cases the fixtures were picked for, so that the comparison above means something.
    let anthropic = &rows[0];
    let span = spans
        .iter()
        .find(|s| str_attr(s, "activity.id") == Some(&anthropic.id.to_string()))
        .unwrap();
    assert_eq!(hex(&span.trace_id), TRACE_ID, "the caller's trace");
    assert_eq!(
        hex(&span.parent_span_id),
        PARENT_SPAN,
        "the caller's span is the parent"
    );
    assert_eq!(
        anthropic.metadata["traceparent"], traceparent,
        "the row keeps the context"
    );
    assert_eq!(
        span.name,
        format!("chat {}", anthropic.model.as_ref().unwrap())
    );
    assert_eq!(str_attr(span, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(span, "gen_ai.provider.name"), Some("anthropic"));
    assert!(anthropic.cost_usd.is_some() && anthropic.input_tokens.is_some());

    let unparented = rows.last().unwrap();
    assert!(!unparented.metadata.contains_key("traceparent"));
    let span = spans
        .iter()
        .find(|s| str_attr(s, "activity.id") == Some(&unparented.id.to_string()))
        .unwrap();
    assert!(span.parent_span_id.is_empty(), "no parent");
    assert_eq!(hex(&span.trace_id), hex(unparented.id.as_bytes()));

    assert!(
        rows.iter().any(|r| r.reasoning_tokens.is_none()),
        "some counts are unknown"
    );
    assert!(rows.iter().any(|r| r.reasoning_tokens.is_some()));
    assert!(
        rows.iter()
            .any(|r| r.cache_read_tokens.is_some_and(|n| n > 0))
    );
    assert!(rows.iter().any(|r| r.outcome == Outcome::Error));
    assert!(rows.iter().any(|r| r.stream && r.ttft_ms.is_some()));

    // The resource names the service.
    let resource = receiver.trace_requests()[0].resource_spans[0]
        .resource
        .clone()
        .unwrap();
    assert!(
        resource
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name" && format!("{:?}", kv.value).contains("otel-test"))
    );

    // Metrics: the token histograms and the cost counter add up to the rows.
    otel.flush_metrics().await.expect("metrics exported");
    let metrics = receiver.metric_requests();
    let input: u64 = rows.iter().filter_map(|r| r.input_tokens).sum();
    let output: u64 = rows.iter().filter_map(|r| r.output_tokens).sum();
    let tokens = "gen_ai.client.token.usage";
    assert_eq!(
        histogram_sum(&metrics, tokens, "gen_ai.token.type", "input"),
        input as f64
    );
    assert_eq!(
        histogram_sum(&metrics, tokens, "gen_ai.token.type", "output"),
        output as f64
    );
    let cost: Decimal = rows.iter().filter_map(|r| r.cost_usd).sum();
    let exported: f64 = counter_points(&metrics, "activity.cost")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!(cost > Decimal::ZERO);
    assert!(
        (exported - cost.to_f64().unwrap()).abs() < 1e-12,
        "cost counter {exported} vs rows {cost}"
    );
    otel.shutdown().await.expect("metrics shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_keeps_every_record_while_the_collector_is_down() {
    let database = MemorySink::new();
    let writer = ActivityWriter::start(
        FanOut::new()
            .sink("database", database.clone())
            .sink("otlp", otel(&closed_endpoint())),
        config(),
    );
    for _ in 0..100 {
        writer.record(ActivityRecord::new(RecordKind::Request));
    }
    assert!(writer.flush_sink("database").await);
    assert_eq!(database.len(), 100);
    // The collector's lane retries meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stats_of(&writer, "otlp").retried < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let otlp = stats_of(&writer, "otlp");
    assert!(otlp.retried >= 2, "{otlp:?}");
    assert_eq!(otlp.written, 0);

    writer.shutdown(Duration::from_millis(200)).await;
    let (db, otlp) = (stats_of(&writer, "database"), stats_of(&writer, "otlp"));
    assert_eq!((db.written, db.failed), (100, 0));
    assert_eq!(
        (otlp.written, otlp.failed),
        (0, 100),
        "counted, not lost silently"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_refusing_the_payload_fails_it_and_an_unavailable_one_is_retried() {
    let receiver = OtlpReceiver::start().await;
    receiver.respond_with(400);
    let writer = ActivityWriter::start(
        FanOut::new().sink("otlp", otel(&receiver.endpoint())),
        config().with_batch_size(4),
    );
    for _ in 0..4 {
        writer.record(ActivityRecord::new(RecordKind::Request));
    }
    writer.flush().await;
    let s = writer.stats();
    // 400 is permanent: the batch is split down to single spans, each refused on its own.
    assert_eq!((s.written, s.failed, s.retried), (0, 4, 0));
    assert_eq!(receiver.refused(), 1 + 2 + 4);

    receiver.respond_with(503);
    writer.record(ActivityRecord::new(RecordKind::Request));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while writer.stats().retried < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(writer.stats().retried >= 2, "503 is retried");
    receiver.respond_with(200);
    writer.flush().await;
    let s = writer.shutdown(Duration::from_secs(5)).await;
    assert_eq!((s.written, s.failed), (1, 4));
    assert_eq!(receiver.spans().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_internal_spans_named_after_the_event() {
    let receiver = OtlpReceiver::start().await;
    let (layer, guard) = ActivityLayer::builder(otel(&receiver.endpoint()))
        .writer_config(config())
        .pair();
    let who = tower_activity::Attribution::user("u_1");
    assert!(layer.events().record("login", "auth", "Auth", &who));
    guard.shutdown(Duration::from_secs(5)).await;
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "login");
    assert_eq!(span.kind, 1, "INTERNAL");
    assert_eq!(str_attr(span, "activity.kind"), Some("event"));
    assert_eq!(str_attr(span, "activity.user_id"), Some("u_1"));
    assert_eq!(str_attr(span, "gen_ai.operation.name"), None);
    assert_eq!(span.start_time_unix_nano, span.end_time_unix_nano);
}
