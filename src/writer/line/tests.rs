use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::write;
use crate::record::{
    ActivityRecord, CostDetails, CostSource, FinishReason, LlmApi, Metadata, Outcome,
    ProviderError, RecordKind, UsageSource,
};

fn line(record: &ActivityRecord) -> Vec<u8> {
    let mut out = Vec::new();
    write(record, &mut out).unwrap();
    out
}

/// Strings with everything JSON must escape, and plain ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_./-]{0,12}",
        any::<String>(),
        "[\"\\\\\u{0}-\u{1f}a\u{7f}é😀]{0,8}",
    ]
}

fn float() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        0.0f64..1e6,
    ])
}

fn record() -> impl Strategy<Value = ActivityRecord> {
    let strings = (
        proptest::option::of(text()),
        proptest::option::of(text()),
        text(),
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    );
    let enums = (
        prop_oneof![Just(RecordKind::Request), Just(RecordKind::Event)],
        prop_oneof![
            Just(LlmApi::OpenAiChat),
            Just(LlmApi::OpenAiResponses),
            Just(LlmApi::OpenAiEmbeddings),
            Just(LlmApi::AnthropicMessages),
            Just(LlmApi::GeminiGenerate),
            Just(LlmApi::Unknown),
        ],
        prop_oneof![
            Just(Outcome::Ok),
            Just(Outcome::Error),
            Just(Outcome::Cancelled),
            Just(Outcome::Interrupted),
        ],
        proptest::option::of(prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::Length),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::ContentFilter),
            Just(FinishReason::Error),
            Just(FinishReason::Cancelled),
            Just(FinishReason::Other),
        ]),
        prop_oneof![
            Just(UsageSource::Reported),
            Just(UsageSource::Estimated),
            Just(UsageSource::None),
        ],
        proptest::option::of(prop_oneof![
            Just(CostSource::Reported),
            Just(CostSource::Computed)
        ]),
    );
    let numbers = (
        any::<u128>(),
        // Years 0..=9999 take the stack buffer, the rest chrono's own format.
        prop_oneof![0i64..253_402_300_800, any::<i32>().prop_map(i64::from)],
        0u32..2_000_000_000,
        any::<bool>(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(proptest::option::of(any::<u64>()), 6),
        proptest::option::of((any::<i64>(), 0u32..=28)),
        (float(), float(), float()),
    );
    let nested = (
        proptest::option::of(proptest::collection::vec((text(), any::<i64>()), 0..4)),
        proptest::option::of(proptest::collection::btree_map(text(), any::<u64>(), 0..4)),
        proptest::option::of((proptest::option::of(text()), text())),
        proptest::collection::vec(
            (
                text(),
                prop_oneof![
                    text().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    Just(Value::Null),
                    Just(serde_json::json!({"a": [1, "b\n", null]})),
                ],
            ),
            0..4,
        ),
    );
    (strings, enums, numbers, nested).prop_map(|(s, e, n, x)| {
        let mut r = ActivityRecord::new(e.0);
        r.user_id = s.0;
        r.session_id = s.1;
        r.app = s.2.into();
        r.endpoint = s.3.into();
        r.model = s.4;
        r.provider = s.5.map(Into::into);
        r.upstream = s.6;
        r.native_finish_reason = s.7.map(Into::into);
        r.service_tier = s.8.map(Into::into);
        r.api = e.1;
        r.outcome = e.2;
        r.finish_reason = e.3;
        r.usage_source = e.4;
        r.cost_source = e.5;
        r.id = Uuid::from_u128(n.0);
        if let Some(t) = Utc.timestamp_opt(n.1, n.2).single() {
            r.timestamp = t;
        }
        r.stream = n.3;
        r.status_code = n.4;
        [
            r.input_tokens,
            r.output_tokens,
            r.total_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.reasoning_tokens,
        ] = [n.5[0], n.5[1], n.5[2], n.5[3], n.5[4], n.5[5]];
        r.cost_usd = n.6.map(|(m, scale)| Decimal::new(m, scale));
        (r.ttft_ms, r.latency_ms, r.speed) = n.7;
        r.cost_details = x.0.map(|parts| {
            let mut d = CostDetails::new();
            for (k, m) in parts {
                d.insert(k, Decimal::new(m, 9));
            }
            d
        });
        r.usage_details = x.1.map(|d| d.into_iter().collect());
        r.error =
            x.2.map(|(kind, message)| ProviderError::new(kind, &message));
        let mut metadata = Metadata::new();
        for (k, v) in x.3 {
            metadata.insert(k, v);
        }
        r.metadata = metadata;
        r
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The line is exactly serde_json's, for any record.
    #[test]
    fn the_line_is_serde_jsons(r in record()) {
        let ours = line(&r);
        let serde = serde_json::to_vec(&r).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
    }
}

#[test]
fn a_default_record_and_one_with_every_field_escape_as_serde_json_does() {
    let mut r = ActivityRecord::new(RecordKind::Request);
    assert_eq!(line(&r), serde_json::to_vec(&r).unwrap());
    r.user_id = Some("a\"b\\c\u{1}d\ne".into());
    r.model = Some("gpt-4o".into());
    r.usage_details = Some([("x\"", 3)].into_iter().collect());
    r.speed = Some(f64::NAN);
    assert_eq!(line(&r), serde_json::to_vec(&r).unwrap());
    let back: ActivityRecord = serde_json::from_slice(&line(&r)).unwrap();
    assert_eq!(back.user_id, r.user_id);
}
