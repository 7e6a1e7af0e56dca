//! The budget's events (`kind: event`, `model: "budget"`, `provider: "Budget"`), recorded
//! through the application's [`EventRecorder`](crate::EventRecorder):
//!
//! - `budget.refused` — a request refused (never sent upstream), with `status_code` 429 or
//!   402 and `metadata`: `subject`, `window`, `window_start`, `metric`, `limit`, `used`,
//!   `reserved`, `requested`, `code`, and the request's `request_endpoint` / `request_model`;
//! - `budget.threshold` — a counter's settled usage crossed a soft threshold of its cap, with
//!   `metadata`: `subject`, `window`, `window_start`, `metric`, `threshold` (`"0.8"`), `limit`
//!   and `spent` (decimal strings).
//!
//! Both belong to the user whose request caused them, so that user's live feed carries them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::attribution::Attribution;
use crate::record::{ActivityRecord, Outcome, RecordKind};

use super::refusal::Refusal;
use super::store::CounterKey;
use super::window::Metric;

fn event(name: &str, who: Option<&Attribution>, counter: &CounterKey) -> ActivityRecord {
    let mut record = ActivityRecord::new(RecordKind::Event);
    record.endpoint = name.to_owned().into();
    record.model = Some("budget".to_owned());
    record.provider = Some("Budget".into());
    record.latency_ms = Some(0.0);
    if let Some(who) = who {
        who.apply(&mut record);
    }
    let m = &mut record.metadata;
    m.insert("subject".into(), (*counter.subject).into());
    m.insert("window".into(), counter.window.as_str().into());
    m.insert("window_start".into(), stamp(counter.start).into());
    record
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn decimal(d: Decimal) -> Value {
    Value::String(d.normalize().to_string())
}

/// The `budget.refused` event of a request to `endpoint` for `model`.
pub(super) fn refused(
    who: Option<&Attribution>,
    refusal: &Refusal,
    endpoint: &str,
    model: Option<&str>,
) -> ActivityRecord {
    let mut record = event("budget.refused", who, &refusal.state.counter);
    record.status_code = Some(refusal.status().as_u16());
    record.outcome = Outcome::Error;
    let metric = refusal.metric;
    let m: &mut Map<String, Value> = &mut record.metadata;
    m.insert("metric".into(), metric.as_str().into());
    m.insert("limit".into(), decimal(refusal.max));
    m.insert("used".into(), decimal(refusal.state.used.get(metric)));
    m.insert(
        "reserved".into(),
        decimal(refusal.state.reserved.get(metric)),
    );
    m.insert("requested".into(), decimal(refusal.needed));
    m.insert("code".into(), refusal.code().into());
    m.insert("request_endpoint".into(), endpoint.into());
    if let Some(model) = model {
        m.insert("request_model".into(), model.into());
    }
    record
}

/// The `budget.threshold` event of `counter` crossing `threshold` × `limit` on `metric`.
pub(super) fn threshold(
    who: Option<&Attribution>,
    counter: &CounterKey,
    metric: Metric,
    threshold: Decimal,
    limit: Decimal,
    spent: Decimal,
) -> ActivityRecord {
    let mut record = event("budget.threshold", who, counter);
    let m = &mut record.metadata;
    m.insert("metric".into(), metric.as_str().into());
    m.insert("threshold".into(), decimal(threshold));
    m.insert("limit".into(), decimal(limit));
    m.insert("spent".into(), decimal(spent));
    record
}
