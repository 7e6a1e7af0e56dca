//! An [`ActivityRecord`] as column values: enums as their names, tokens as `BIGINT`, money as
//! exact decimal text, metadata as JSON text, and no NUL character anywhere.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::record::{ActivityRecord, Details, Metadata};
use crate::sink::SinkError;
use crate::sink::json_text;

/// Replaces each NUL character with U+FFFD (�).
///
/// PostgreSQL's `TEXT` and `JSONB` reject `\0` (the whole batch would fail); both SQL sinks
/// store the same replacement so that the two backends read back the same record. Borrows
/// when there is nothing to replace (nearly always).
pub(crate) fn sanitise(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn sanitise_opt<S: std::ops::Deref<Target = str>>(text: &Option<S>) -> Option<Cow<'_, str>> {
    text.as_deref().map(sanitise)
}

/// The column values of one record, in the order of the shared column list.
#[derive(Debug)]
pub(crate) struct EncodedRecord<'a> {
    pub(crate) id: Uuid,
    pub(crate) kind: &'static str,
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) user_id: Option<Cow<'a, str>>,
    pub(crate) session_id: Option<Cow<'a, str>>,
    pub(crate) app: Cow<'a, str>,
    pub(crate) endpoint: Cow<'a, str>,
    pub(crate) api: &'static str,
    pub(crate) model: Option<Cow<'a, str>>,
    pub(crate) provider: Option<Cow<'a, str>>,
    pub(crate) upstream: Option<Cow<'a, str>>,
    pub(crate) stream: bool,
    pub(crate) status_code: Option<i32>,
    pub(crate) outcome: &'static str,
    pub(crate) finish_reason: Option<&'static str>,
    pub(crate) native_finish_reason: Option<Cow<'a, str>>,
    /// `input_tokens, output_tokens, total_tokens, cache_read_tokens, cache_write_tokens,
    /// reasoning_tokens`.
    pub(crate) tokens: [Option<i64>; 6],
    pub(crate) usage_source: &'static str,
    /// The exact decimal as text (`"0.0000325"`): never through a float.
    pub(crate) cost_usd: Option<String>,
    pub(crate) ttft_ms: Option<f64>,
    pub(crate) latency_ms: Option<f64>,
    pub(crate) speed: Option<f64>,
    pub(crate) error_type: Option<Cow<'a, str>>,
    pub(crate) error_message: Option<Cow<'a, str>>,
    /// The metadata object as JSON text.
    pub(crate) metadata: String,
    pub(crate) service_tier: Option<Cow<'a, str>>,
    pub(crate) cost_source: Option<&'static str>,
    /// The parts of the cost as JSON text (an object of exact decimal strings).
    pub(crate) cost_details: Option<String>,
    /// The extra counts as JSON text.
    pub(crate) usage_details: Option<String>,
}

impl<'a> EncodedRecord<'a> {
    /// Encodes `record`; a token count beyond `i64::MAX` is refused as
    /// [`SinkError::Permanent`] (the writer then isolates that record).
    pub(crate) fn new(record: &'a ActivityRecord) -> Result<Self, SinkError> {
        let token = |name: &str, value: Option<u64>| {
            value
                .map(|n| {
                    i64::try_from(n).map_err(|_| {
                        SinkError::permanent(format!(
                            "record {}: {name} = {n} does not fit a BIGINT column",
                            record.id
                        ))
                    })
                })
                .transpose()
        };
        Ok(EncodedRecord {
            id: record.id,
            kind: match record.kind {
                crate::RecordKind::Request => "request",
                crate::RecordKind::Event => "event",
            },
            timestamp: record.timestamp,
            user_id: sanitise_opt(&record.user_id),
            session_id: sanitise_opt(&record.session_id),
            app: sanitise(&record.app),
            endpoint: sanitise(&record.endpoint),
            api: record.api.as_str(),
            model: sanitise_opt(&record.model),
            provider: sanitise_opt(&record.provider),
            upstream: sanitise_opt(&record.upstream),
            stream: record.stream,
            status_code: record.status_code.map(i32::from),
            outcome: record.outcome.as_str(),
            finish_reason: record.finish_reason.map(|f| f.as_str()),
            native_finish_reason: sanitise_opt(&record.native_finish_reason),
            tokens: [
                token("input_tokens", record.input_tokens)?,
                token("output_tokens", record.output_tokens)?,
                token("total_tokens", record.total_tokens)?,
                token("cache_read_tokens", record.cache_read_tokens)?,
                token("cache_write_tokens", record.cache_write_tokens)?,
                token("reasoning_tokens", record.reasoning_tokens)?,
            ],
            usage_source: record.usage_source.as_str(),
            cost_usd: record.cost_usd.map(|c| {
                let mut text = String::with_capacity(24);
                json_text::decimal(&mut text, &c);
                text
            }),
            ttft_ms: record.ttft_ms,
            latency_ms: record.latency_ms,
            speed: record.speed,
            error_type: record
                .error
                .as_ref()
                .and_then(|e| e.kind.as_deref())
                .map(sanitise),
            error_message: record.error.as_ref().map(|e| sanitise(&e.message)),
            metadata: metadata_json(&record.metadata)?,
            service_tier: sanitise_opt(&record.service_tier),
            cost_source: record.cost_source.map(|s| s.as_str()),
            cost_details: record
                .cost_details
                .as_ref()
                .map(|d| details_json(d, json_text::cost_details))
                .transpose()?,
            usage_details: record
                .usage_details
                .as_ref()
                .map(|d| details_json(d, json_text::usage_details))
                .transpose()?,
        })
    }

    /// The tokens a record adds to the rollup's `total_tokens` (the stats' "tokens"): input
    /// plus output, unknown counts as 0. (PostgreSQL computes it in SQL.)
    #[cfg(feature = "sqlite")]
    pub(crate) fn stats_tokens(&self) -> i64 {
        self.tokens[0]
            .unwrap_or(0)
            .saturating_add(self.tokens[1].unwrap_or(0))
    }
}

/// The metadata as JSON text, NUL characters in keys and strings replaced (serde_json writes
/// them as `\u0000`, which `JSONB` rejects).
fn metadata_json(metadata: &Metadata) -> Result<String, SinkError> {
    let json = json_string(|out| json_text::metadata(out, metadata))?;
    if !json.contains("\\u0000") {
        return Ok(json);
    }
    let clean = clean_object(&metadata.to_map());
    serde_json::to_string(&clean).map_err(SinkError::permanent)
}

/// A details map as JSON text (`write` is [`json_text`]'s), its keys without NUL characters
/// (the layer's own keys have none; a record made by hand might: those keys are replaced and
/// the map sorted again).
fn details_json<V: serde::Serialize>(
    details: &Details<V>,
    write: fn(&mut String, &Details<V>) -> std::io::Result<()>,
) -> Result<String, SinkError> {
    if !details.keys().any(|k| k.contains('\0')) {
        return json_string(|out| write(out, details));
    }
    let clean: BTreeMap<Cow<'_, str>, &V> = details.iter().map(|(k, v)| (sanitise(k), v)).collect();
    serde_json::to_string(&clean).map_err(SinkError::permanent)
}

/// The text `write` appends to an empty string (with serde_json's starting room).
fn json_string(
    write: impl FnOnce(&mut String) -> std::io::Result<()>,
) -> Result<String, SinkError> {
    let mut out = String::with_capacity(128);
    write(&mut out).map_err(SinkError::permanent)?;
    Ok(out)
}

fn clean_object(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (sanitise(k).into_owned(), clean_value(v)))
        .collect()
}

fn clean_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(sanitise(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(clean_value).collect()),
        Value::Object(map) => Value::Object(clean_object(map)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordKind;
    use rust_decimal::Decimal;
    use serde_json::json;

    #[test]
    fn nul_characters_become_replacement_characters_everywhere() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.model = Some("gpt\0x".into());
        r.metadata = json!({"k\0": ["a\0", {"b": "\0"}], "n": 1, "lit": "\\u0000"})
            .as_object()
            .unwrap()
            .clone()
            .into();
        let e = EncodedRecord::new(&r).unwrap();
        assert_eq!(e.model.as_deref(), Some("gpt\u{FFFD}x"));
        let back: Value = serde_json::from_str(&e.metadata).unwrap();
        assert_eq!(
            back,
            json!({"k\u{FFFD}": ["a\u{FFFD}", {"b": "\u{FFFD}"}], "n": 1, "lit": "\\u0000"}),
            "a literal backslash-u text is left alone"
        );
        assert!(matches!(sanitise("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn details_are_json_objects_with_nul_free_keys() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.cost_details = Some(
            [
                ("output", Decimal::new(24, 7)),
                ("input", Decimal::new(-5, 0)),
            ]
            .into_iter()
            .collect(),
        );
        r.usage_details = Some([("z\0", 7), ("b", 1), ("a", 0)].into_iter().collect());
        let e = EncodedRecord::new(&r).unwrap();
        assert_eq!(
            e.cost_details.as_deref(),
            Some(r#"{"input":"-5","output":"0.0000024"}"#)
        );
        // A NUL in a key is replaced, and the keys stay in order.
        assert_eq!(
            e.usage_details.as_deref(),
            Some("{\"a\":0,\"b\":1,\"z\u{FFFD}\":7}")
        );
        r.cost_details = None;
        assert_eq!(EncodedRecord::new(&r).unwrap().cost_details, None);
    }

    #[test]
    fn token_counts_beyond_bigint_are_permanent_errors() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.output_tokens = Some(u64::MAX);
        let err = EncodedRecord::new(&r).unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("output_tokens"), "{err}");
    }
}
