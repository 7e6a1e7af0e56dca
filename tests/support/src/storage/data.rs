//! Records to store: one with every field set, one with every field empty, random ones.

use std::str::FromStr;

use chrono::{DateTime, Days, TimeDelta, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use tower_activity::{
    ActivityRecord, CostDetails, CostSource, FinishReason, LlmApi, Outcome, ProviderError,
    RecordKind, UsageSource,
};
use uuid::Uuid;

/// A request of `user` at `timestamp`.
pub fn record(user: &str, timestamp: DateTime<Utc>) -> ActivityRecord {
    let mut r = ActivityRecord::new(RecordKind::Request);
    r.user_id = Some(user.to_owned());
    r.timestamp = timestamp;
    r
}

/// Midnight today (UTC) minus `days`, plus `micros`.
pub fn day_ago(days: u64, micros: i64) -> DateTime<Utc> {
    let day = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(days))
        .unwrap();
    day.and_hms_opt(0, 0, 0).unwrap().and_utc() + TimeDelta::microseconds(micros)
}

/// Every field set, with values that a careless store would bend: a cost with 27 significant
/// digits, token counts beyond 32 bits, floats that are not short decimals, nested JSON.
pub fn full_record(user: &str) -> ActivityRecord {
    let mut r = ActivityRecord::new(RecordKind::Request);
    r.user_id = Some(user.to_owned());
    r.session_id = Some("sess-ü-1".into());
    r.app = "chat-app".into();
    r.endpoint = "/v1/messages".into();
    r.api = LlmApi::AnthropicMessages;
    r.model = Some("claude-sonnet-4-5-20250929".into());
    r.provider = Some("Anthropic".into());
    r.upstream = Some("https://api.anthropic.com".into());
    r.stream = true;
    r.status_code = Some(200);
    r.outcome = Outcome::Interrupted;
    r.finish_reason = Some(FinishReason::ToolCalls);
    r.native_finish_reason = Some("tool_use".into());
    r.input_tokens = Some(5_000_000_123);
    r.output_tokens = Some(4_294_967_297);
    r.total_tokens = Some(5_000_000_123 + 4_294_967_297);
    r.cache_read_tokens = Some(1_000_000_000);
    r.cache_write_tokens = Some(7);
    r.reasoning_tokens = Some(0);
    r.usage_source = UsageSource::Estimated;
    r.cost_usd = Some(Decimal::from_str("12.345678901234567890123456").unwrap());
    r.cost_source = Some(CostSource::Reported);
    r.service_tier = Some("priority".into());
    r.cost_details = Some(CostDetails::from_iter([
        (
            "input",
            Decimal::from_str("0.000000000000000000000000001").unwrap(),
        ),
        ("cache_write_1h", Decimal::from_str("7.5").unwrap()),
        (
            "computed",
            Decimal::from_str("12.345678901234567890123457").unwrap(),
        ),
    ]));
    r.usage_details = Some(
        [
            ("input_audio_tokens", 18_446_744_073_709_551_615),
            ("web_search_requests", 3),
        ]
        .into_iter()
        .collect(),
    );
    r.ttft_ms = Some(0.1 + 0.2);
    r.latency_ms = Some(1_234.567_890_123_456_7);
    r.speed = Some(f64::MIN_POSITIVE);
    r.error = Some(ProviderError {
        kind: Some("overloaded_error".into()),
        message: "Overloaded — \"retry\" later\n".into(),
    });
    r.metadata = json!({
        "request_id": "req_011CV",
        "tags": {"team": "α", "n": 3, "ok": true, "none": null, "list": [1, "two", [3]]},
        "big": 18446744073709551615u64,
        "half": 1.5,
    })
    .as_object()
    .unwrap()
    .clone()
    .into();
    r
}

/// Every optional field empty: nulls must stay null (not 0, not "").
pub fn empty_record(user: &str) -> ActivityRecord {
    let mut r = ActivityRecord::new(RecordKind::Event);
    r.user_id = Some(user.to_owned());
    r.error = Some(ProviderError {
        kind: None,
        message: String::new(),
    });
    r
}

/// A random record of one of three users (or none), on one of the last 12 days.
pub fn arb_record() -> impl Strategy<Value = ActivityRecord> {
    let user = prop_oneof![
        Just(Some("alice")),
        Just(Some("bob")),
        Just(Some("carol")),
        Just(None)
    ];
    let model = prop_oneof![
        Just(Some("gpt-4o")),
        Just(Some("claude-3-5-haiku")),
        Just(Some("")),
        Just(None)
    ];
    let provider = prop_oneof![Just(Some("OpenAI")), Just(Some("Anthropic")), Just(None)];
    let tokens = proptest::option::weighted(0.8, 0u64..2_000_000);
    // Up to $1,000,000 at 6 decimals, down to 20 decimals: sums stay within the 28
    // significant digits of rust_decimal, where every addition is exact.
    let cost = proptest::option::weighted(0.8, (0i64..1_000_000_000_000, 6u32..=20))
        .prop_map(|c| c.map(|(m, scale)| Decimal::new(m, scale)));
    (
        user,
        model,
        provider,
        (tokens.clone(), tokens),
        cost,
        0u64..12,
        0i64..86_400_000_000,
        prop::bool::weighted(0.85),
        any::<u128>(),
    )
        .prop_map(
            |(user, model, provider, (input, output), cost, days, micros, request, id)| {
                let mut r = ActivityRecord::new(if request {
                    RecordKind::Request
                } else {
                    RecordKind::Event
                });
                r.id = Uuid::from_u128(id);
                r.user_id = user.map(str::to_owned);
                r.model = model.map(str::to_owned);
                r.provider = provider.map(|p| p.to_owned().into());
                r.input_tokens = input;
                r.output_tokens = output;
                r.total_tokens = input.zip(output).map(|(i, o)| i + o);
                r.cost_usd = cost;
                r.timestamp = day_ago(days, micros);
                r
            },
        )
}

/// `n` records of `user`, some sharing a timestamp (the id breaks the tie), across models,
/// providers and kinds, newest within the last 3 days.
pub fn log_rows(user: &str, n: usize) -> Vec<ActivityRecord> {
    (0..n)
        .map(|i| {
            let mut r = record(user, day_ago(2, (i as i64 / 3) * 60_000_000));
            r.kind = if i % 7 == 0 {
                RecordKind::Event
            } else {
                RecordKind::Request
            };
            r.model = Some(["gpt-4o", "claude", "gemini"][i % 3].to_owned());
            r.provider = Some(["OpenAI", "Anthropic"][i % 2].into());
            r.input_tokens = Some(i as u64);
            r
        })
        .collect()
}
