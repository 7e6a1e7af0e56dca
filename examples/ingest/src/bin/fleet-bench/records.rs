//! Live-traffic records for the backlog, shaped as the storage bench's (`benches/storage.rs`):
//! 500 users, 5 models, timestamps of the last ten minutes, a request id in the metadata.

use rust_decimal::Decimal;
use tower_activity::{ActivityRecord, LlmApi, RecordKind, UsageSource};

const MODELS: [(&str, &str); 5] = [
    ("gpt-4o", "OpenAI"),
    ("gpt-4o-mini", "OpenAI"),
    ("claude-sonnet-4-5", "Anthropic"),
    ("gemini-2.5-flash", "Google"),
    ("deepseek-chat", "DeepSeek"),
];

/// The `i`-th record.
pub fn record(i: u64, now: chrono::DateTime<chrono::Utc>) -> ActivityRecord {
    let (model, provider) = MODELS[(i % 5) as usize];
    let mut r = ActivityRecord::new(RecordKind::Request);
    r.timestamp = now - chrono::TimeDelta::milliseconds((i % 600_000) as i64);
    r.user_id = Some(format!("user-{}", i % 500));
    r.session_id = Some(format!("sess-{}", i % 97));
    r.endpoint = "/v1/chat/completions".into();
    r.api = LlmApi::OpenAiChat;
    r.model = Some(model.into());
    r.provider = Some(provider.into());
    r.stream = i % 2 == 0;
    r.status_code = Some(200);
    r.input_tokens = Some(100 + i % 900);
    r.output_tokens = Some(20 + i % 300);
    r.total_tokens = Some(120 + i % 900 + i % 300);
    r.usage_source = UsageSource::Reported;
    r.cost_usd = Some(Decimal::new((i % 10_000) as i64 * 13 + 7, 9));
    r.latency_ms = Some(350.25 + (i % 1000) as f64);
    r.metadata
        .insert("request_id".into(), format!("req_{i:012}").into());
    r
}
