//! One record as one span: ids, timing, status and the GenAI attributes (the mapping table is
//! in the module docs of [`OtelSink`](super::OtelSink)).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::names::*;
use crate::record::{ActivityRecord, CostSource, LlmApi, Outcome, RecordKind};
use crate::traceparent::{self, TraceParent};

/// The span of `record`.
pub(super) fn span(record: &ActivityRecord, scope: &InstrumentationScope) -> SpanData {
    let id = record.id.as_bytes();
    // The span id is the record id's last 8 bytes (random in a UUID v7), so a retried export
    // sends the same span and a backend can de-duplicate it; without a parent, the trace id is
    // the whole record id.
    let mut span_id: [u8; 8] = id[8..].try_into().expect("a UUID has 16 bytes");
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    let parent = record
        .metadata
        .get(traceparent::METADATA_KEY)
        .and_then(|v| v.as_str())
        .and_then(TraceParent::parse);
    let (trace_id, parent_span_id) = match parent {
        Some(p) => (
            TraceId::from_bytes(p.trace_id),
            SpanId::from_bytes(p.span_id),
        ),
        None => (TraceId::from_bytes(*id), SpanId::INVALID),
    };
    let start: SystemTime = record.timestamp.into();
    let end = start + record.latency_ms.map(millis).unwrap_or_default();
    let operation = operation(record);
    let name: Cow<'static, str> = match (record.kind, operation, &record.model) {
        (RecordKind::Event, _, _) => record.endpoint.clone(),
        (_, Some(op), Some(model)) => format!("{op} {model}").into(),
        (_, Some(op), None) => op.into(),
        (_, None, _) => format!("{} {}", record.api.as_str(), record.endpoint).into(),
    };
    SpanData {
        span_context: SpanContext::new(
            trace_id,
            SpanId::from_bytes(span_id),
            // Every record is exported: it is accounting, not a sample.
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id,
        parent_span_is_remote: parent.is_some(),
        span_kind: match record.kind {
            RecordKind::Request => SpanKind::Client,
            RecordKind::Event => SpanKind::Internal,
        },
        name,
        start_time: start,
        end_time: end,
        attributes: attributes(record, operation),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: status(record),
        instrumentation_scope: scope.clone(),
    }
}

fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

/// `gen_ai.operation.name` of a request record; `None` for events and unknown APIs.
pub(super) fn operation(record: &ActivityRecord) -> Option<&'static str> {
    if record.kind == RecordKind::Event {
        return None;
    }
    Some(match record.api {
        LlmApi::OpenAiChat if record.endpoint.ends_with("/v1/completions") => "text_completion",
        LlmApi::OpenAiChat | LlmApi::OpenAiResponses | LlmApi::AnthropicMessages => "chat",
        LlmApi::GeminiGenerate => "generate_content",
        LlmApi::OpenAiEmbeddings => "embeddings",
        LlmApi::Unknown => return None,
    })
}

/// `gen_ai.provider.name`: the well-known value for the makers that have one, else the
/// record's provider in lower case with `_` for spaces.
pub(super) fn provider_name(provider: &str) -> Cow<'static, str> {
    match provider {
        "OpenAI" => "openai".into(),
        "Anthropic" => "anthropic".into(),
        "Google" => "gcp.gemini".into(),
        "Mistral AI" => "mistral_ai".into(),
        "DeepSeek" => "deepseek".into(),
        "xAI" => "x_ai".into(),
        "Cohere" => "cohere".into(),
        other => other.to_lowercase().replace(' ', "_").into(),
    }
}

fn status(record: &ActivityRecord) -> Status {
    match record.outcome {
        Outcome::Ok | Outcome::Cancelled => Status::Unset,
        Outcome::Error => Status::error(
            record
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "error".to_owned()),
        ),
        Outcome::Interrupted => Status::error("the response ended before its end marker"),
    }
}

/// `error.type` of a record that is an error: the provider's type, else (outcome `error`) the
/// HTTP status, else the outcome. An interrupted stream's status is the `200` it started
/// with, which says nothing of the failure: it is `interrupted` unless the provider named one.
pub(super) fn error_type(record: &ActivityRecord) -> Option<String> {
    let kind = record.error.as_ref().and_then(|e| e.kind.clone());
    match record.outcome {
        Outcome::Ok | Outcome::Cancelled => None,
        Outcome::Error => Some(
            kind.or_else(|| record.status_code.map(|s| s.to_string()))
                .unwrap_or_else(|| record.outcome.as_str().to_owned()),
        ),
        Outcome::Interrupted => Some(kind.unwrap_or_else(|| record.outcome.as_str().to_owned())),
    }
}

fn attributes(r: &ActivityRecord, operation: Option<&'static str>) -> Vec<KeyValue> {
    let mut a = Vec::with_capacity(32);
    let mut put = |key: &'static str, value: Value| a.push(KeyValue::new(key, value));
    let string = |s: &str| Value::from(s.to_owned());
    let count = |n: u64| Value::I64(i64::try_from(n).unwrap_or(i64::MAX));

    put(ACTIVITY_ID, Value::from(r.id.to_string()));
    put(ACTIVITY_KIND, Value::from(kind(r.kind)));
    put(ACTIVITY_APP, string(&r.app));
    if let Some(user) = &r.user_id {
        put(ACTIVITY_USER_ID, string(user));
    }
    if let Some(session) = &r.session_id {
        put(ACTIVITY_SESSION_ID, string(session));
        put(GEN_AI_CONVERSATION_ID, string(session));
    }
    if let Some(model) = &r.model {
        put(ACTIVITY_MODEL, string(model));
    }
    if let Some(provider) = &r.provider {
        put(ACTIVITY_PROVIDER, string(provider));
    }
    if r.kind == RecordKind::Event {
        return a;
    }
    put(ACTIVITY_API, Value::from(r.api.as_str()));
    put(ACTIVITY_ENDPOINT, string(&r.endpoint));
    put(ACTIVITY_OUTCOME, Value::from(r.outcome.as_str()));
    put(ACTIVITY_USAGE_SOURCE, Value::from(r.usage_source.as_str()));
    if let Some(upstream) = &r.upstream {
        put(ACTIVITY_UPSTREAM, string(upstream));
    }
    if let Some(op) = operation {
        put(GEN_AI_OPERATION_NAME, Value::from(op));
    }
    if let Some(provider) = &r.provider {
        put(GEN_AI_PROVIDER_NAME, Value::from(provider_name(provider)));
    }
    if let Some(model) = &r.model {
        // The record keeps one name: the response's, else the request's.
        put(GEN_AI_REQUEST_MODEL, string(model));
        put(GEN_AI_RESPONSE_MODEL, string(model));
    }
    if let Some(id) = r.metadata.get("response_id").and_then(|v| v.as_str()) {
        put(GEN_AI_RESPONSE_ID, string(id));
    }
    if let Some(reason) = r.finish_reason {
        let reasons = vec![reason.as_str().into()];
        put(
            GEN_AI_RESPONSE_FINISH_REASONS,
            Value::Array(opentelemetry::Array::String(reasons)),
        );
    }
    put(GEN_AI_REQUEST_STREAM, Value::Bool(r.stream));
    for (key, n) in [
        (GEN_AI_USAGE_INPUT_TOKENS, r.input_tokens),
        (GEN_AI_USAGE_OUTPUT_TOKENS, r.output_tokens),
        (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, r.cache_read_tokens),
        (
            GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            r.cache_write_tokens,
        ),
        (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, r.reasoning_tokens),
    ] {
        // Unknown is absent, never 0.
        if let Some(n) = n {
            put(key, count(n));
        }
    }
    if let Some(cost) = r.cost_usd {
        put(GEN_AI_USAGE_COST_AMOUNT, Value::from(cost.to_string()));
        put(GEN_AI_USAGE_COST_CURRENCY, Value::from("USD"));
    }
    if let Some(source) = r.cost_source {
        let source = match source {
            CostSource::Reported => "provider",
            CostSource::Computed => "local",
        };
        put(GEN_AI_USAGE_COST_SOURCE, Value::from(source));
    }
    for (part, cost) in r.cost_details.iter().flatten() {
        a.push(KeyValue::new(
            format!("{ACTIVITY_COST_DETAILS}.{part}"),
            cost.to_string(),
        ));
    }
    for (part, n) in r.usage_details.iter().flatten() {
        a.push(KeyValue::new(
            format!("{ACTIVITY_USAGE_DETAILS}.{part}"),
            count(*n),
        ));
    }
    let mut put = |key: &'static str, value: Value| a.push(KeyValue::new(key, value));
    if let Some(tier) = &r.service_tier {
        put(ACTIVITY_SERVICE_TIER, string(tier));
    }
    if let Some(ttft) = r.ttft_ms {
        put(
            GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            Value::F64(ttft / 1000.0),
        );
    }
    if let Some(status) = r.status_code {
        put(HTTP_RESPONSE_STATUS_CODE, Value::I64(status.into()));
    }
    if let Some(error) = error_type(r) {
        put(ERROR_TYPE, Value::from(error));
    }
    a
}

fn kind(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Request => "request",
        RecordKind::Event => "event",
    }
}
