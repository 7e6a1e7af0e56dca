//! How big a record may get: caps on its strings (applied by the writer to every record it
//! takes), and its approximate size, which the writer's queue is bounded by.
//!
//! A record's strings come from places a client controls (the request's `model`, the path,
//! the application's tags): a 900 KB model name must not reach the log, the rollup's key or
//! the writer's memory as it is.

use std::borrow::Cow;
use std::mem::size_of;

use serde_json::Value;

use crate::record::{ActivityRecord, ProviderError, char_floor};

impl ActivityRecord {
    /// The longest `model`, `provider`, `user_id`, `session_id`, `app`, `upstream`,
    /// `native_finish_reason`, `service_tier` and `error.type` a stored record keeps, in bytes.
    pub const MAX_NAME: usize = 256;
    /// The longest `endpoint` a stored record keeps, in bytes.
    pub const MAX_ENDPOINT: usize = 2048;
    /// The longest string anywhere in `metadata` a stored record keeps, in bytes.
    pub const MAX_METADATA_STRING: usize = 4096;

    /// Cuts every string over its cap (on a character boundary) and names each field cut in
    /// `metadata.truncated` (`["model", "metadata.tags"]`); `false` when nothing was cut.
    pub(crate) fn cap_fields(&mut self) -> bool {
        let mut cut: Vec<String> = Vec::new();
        let mut note = |field: &str, was_cut: bool| {
            if was_cut {
                cut.push(field.to_owned());
            }
        };
        let name =
            |value: &mut Option<String>| value.as_mut().is_some_and(|v| cut_to(v, Self::MAX_NAME));
        let word = |value: &mut Option<Cow<'static, str>>| {
            value.as_mut().is_some_and(|v| cut_cow(v, Self::MAX_NAME))
        };
        note("model", name(&mut self.model));
        note("provider", word(&mut self.provider));
        note("user_id", name(&mut self.user_id));
        note("session_id", name(&mut self.session_id));
        note("upstream", name(&mut self.upstream));
        note("native_finish_reason", word(&mut self.native_finish_reason));
        note("service_tier", word(&mut self.service_tier));
        note("app", cut_cow(&mut self.app, Self::MAX_NAME));
        note("endpoint", cut_cow(&mut self.endpoint, Self::MAX_ENDPOINT));
        if let Some(error) = &mut self.error {
            note("error.type", name(&mut error.kind));
            note(
                "error.message",
                cut_to(&mut error.message, ProviderError::MAX_MESSAGE),
            );
        }
        // Read first: changing goes through `DerefMut`, which copies a shared `price_table`.
        let max = Self::MAX_METADATA_STRING;
        if self.metadata.values().any(|value| !within(value, max)) {
            for (key, value) in self.metadata.iter_mut() {
                if cap_strings(value, max) {
                    cut.push(format!("metadata.{key}"));
                }
            }
        }
        if cut.is_empty() {
            return false;
        }
        let truncated = self
            .metadata
            .entry("truncated")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !truncated.is_array() {
            *truncated = Value::Array(Vec::new());
        }
        if let Value::Array(list) = truncated {
            list.extend(cut.into_iter().map(Value::String));
        }
        true
    }

    /// Caps the record's strings as [`cap_fields`](Self::cap_fields) does and returns its
    /// [`approx_size`](Self::approx_size) afterwards. The writer does both for every record it
    /// takes: one walk of the strings and of `metadata` measures them and finds nothing over
    /// its cap (the common case); only a record with something to cut is walked again.
    pub(crate) fn capped_size(&mut self) -> usize {
        match self.size_within_caps() {
            Some(size) => size,
            None => {
                self.cap_fields();
                self.approx_size()
            }
        }
    }

    /// [`approx_size`](Self::approx_size), or `None` when a string is over its cap.
    fn size_within_caps(&self) -> Option<usize> {
        let name = |len: usize| (len <= Self::MAX_NAME).then_some(len);
        let mut size = size_of::<ActivityRecord>()
            + name(len(&self.user_id))?
            + name(len(&self.session_id))?
            + name(len(&self.model))?
            + name(len(&self.provider))?
            + name(len(&self.upstream))?
            + name(len(&self.native_finish_reason))?
            + name(len(&self.service_tier))?;
        if self.app.len() > Self::MAX_NAME || self.endpoint.len() > Self::MAX_ENDPOINT {
            return None;
        }
        size += self.app.len() + self.endpoint.len();
        if let Some(e) = &self.error {
            if e.message.len() > ProviderError::MAX_MESSAGE {
                return None;
            }
            size += name(len(&e.kind))? + e.message.len();
        }
        size += self.details_size();
        for (k, v) in self.metadata.iter() {
            size += k.len() + ENTRY + value_size_within(v, Self::MAX_METADATA_STRING)?;
        }
        Some(size)
    }

    /// What `cost_details` and `usage_details` add to [`approx_size`](Self::approx_size).
    fn details_size(&self) -> usize {
        let mut size = 0;
        if let Some(d) = &self.cost_details {
            size += d.keys().map(|k| k.len() + ENTRY + 16).sum::<usize>();
        }
        if let Some(d) = &self.usage_details {
            size += d.keys().map(|k| k.len() + ENTRY + 8).sum::<usize>();
        }
        size
    }

    /// About how many bytes the record occupies (its struct and what its strings, maps and
    /// metadata hold): what the writer's queue counts against
    /// [`WriterConfig::queue_bytes`](crate::WriterConfig::queue_bytes).
    pub(crate) fn approx_size(&self) -> usize {
        let mut size = size_of::<ActivityRecord>()
            + len(&self.user_id)
            + len(&self.session_id)
            + self.app.len()
            + self.endpoint.len()
            + len(&self.model)
            + len(&self.provider)
            + len(&self.upstream)
            + len(&self.native_finish_reason)
            + len(&self.service_tier);
        if let Some(e) = &self.error {
            size += len(&e.kind) + e.message.len();
        }
        size += self.details_size();
        size += self
            .metadata
            .iter()
            .map(|(k, v)| k.len() + ENTRY + value_size(v))
            .sum::<usize>();
        size
    }
}

/// What a map entry adds to a record's size besides its key's bytes and its value: the key's
/// `String` and the node's share.
const ENTRY: usize = size_of::<String>() + 32;

/// Cuts `s` to at most `max` bytes on a character boundary; `true` when it was longer.
/// [`cut_to`] for a string that may be borrowed (copied only when it is cut).
/// The length of an optional string, 0 when absent.
fn len<S: std::ops::Deref<Target = str>>(s: &Option<S>) -> usize {
    s.as_deref().map_or(0, str::len)
}

fn cut_cow(s: &mut Cow<'static, str>, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let end = char_floor(s, max);
    s.to_mut().truncate(end);
    true
}

fn cut_to(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    s.truncate(char_floor(s, max));
    true
}

/// Cuts every string in `value` (at any depth) to `max` bytes; `true` when one was longer.
fn cap_strings(value: &mut Value, max: usize) -> bool {
    match value {
        Value::String(s) => cut_to(s, max),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |cut, v| cap_strings(v, max) | cut),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |cut, v| cap_strings(v, max) | cut),
        _ => false,
    }
}

/// Whether every string in `value` (at any depth) is at most `max` bytes.
fn within(value: &Value, max: usize) -> bool {
    match value {
        Value::String(s) => s.len() <= max,
        Value::Array(items) => items.iter().all(|v| within(v, max)),
        Value::Object(map) => map.values().all(|v| within(v, max)),
        _ => true,
    }
}

/// About how many bytes a JSON value holds.
fn value_size(value: &Value) -> usize {
    size_of::<Value>()
        + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(value_size).sum(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| k.len() + ENTRY + value_size(v))
                .sum(),
            _ => 0,
        }
}

/// [`value_size`], or `None` when a string in `value` (at any depth) is over `max` bytes.
fn value_size_within(value: &Value, max: usize) -> Option<usize> {
    let inner = match value {
        Value::String(s) => (s.len() <= max).then_some(s.len())?,
        Value::Array(items) => {
            let mut size = 0;
            for v in items {
                size += value_size_within(v, max)?;
            }
            size
        }
        Value::Object(map) => {
            let mut size = 0;
            for (k, v) in map {
                size += k.len() + ENTRY + value_size_within(v, max)?;
            }
            size
        }
        _ => 0,
    };
    Some(size_of::<Value>() + inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;
    use serde_json::json;

    #[test]
    fn long_strings_are_cut_and_named() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.model = Some("m".repeat(900_000));
        r.user_id = Some("u".to_owned());
        r.endpoint = "/".repeat(5000).into();
        r.error = Some(ProviderError {
            kind: Some("é".repeat(200)),
            message: "x".repeat(5000),
        });
        r.metadata
            .insert("tags".into(), json!({"a": ["é".repeat(3000), 1]}));
        r.metadata.insert("short".into(), json!("s"));
        assert!(r.cap_fields());
        assert_eq!(r.model.as_deref().map(str::len), Some(256));
        assert_eq!(r.user_id.as_deref(), Some("u"));
        assert_eq!(r.endpoint.len(), 2048);
        let error = r.error.as_ref().unwrap();
        assert_eq!(error.kind.as_deref().map(str::len), Some(256));
        assert_eq!(error.message.len(), ProviderError::MAX_MESSAGE);
        assert_eq!(r.metadata["tags"]["a"][0].as_str().unwrap().len(), 4096);
        assert_eq!(
            r.metadata["truncated"],
            json!([
                "model",
                "endpoint",
                "error.type",
                "error.message",
                "metadata.tags"
            ])
        );
        // Cut on a character boundary: `é` is two bytes, 4096 is even.
        let mut odd = ActivityRecord::new(RecordKind::Request);
        odd.model = Some(format!("x{}", "é".repeat(200)));
        odd.cap_fields();
        assert_eq!(odd.model.as_deref().map(str::len), Some(255));
        // Borrowed strings are cut as owned ones (a copy of what is kept).
        let long: &'static str = Box::leak(format!("x{}", "é".repeat(200)).into_boxed_str());
        let mut borrowed = ActivityRecord::new(RecordKind::Request);
        borrowed.provider = Some(Cow::Borrowed(long));
        borrowed.app = Cow::Borrowed(long);
        assert!(borrowed.cap_fields());
        assert_eq!(borrowed.provider.as_deref(), Some(&long[..255]));
        assert_eq!(&*borrowed.app, &long[..255]);
        assert_eq!(borrowed.metadata["truncated"], json!(["provider", "app"]));
    }

    #[test]
    fn a_record_within_its_caps_is_untouched() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.model = Some("m".repeat(256));
        r.metadata.insert("truncated".into(), json!("app's own"));
        let before = r.clone();
        assert!(!r.cap_fields());
        assert_eq!(r, before);
    }

    #[test]
    fn a_shared_price_table_is_capped_and_otherwise_left_shared() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.metadata
            .share_price_table(std::sync::Arc::new(json!({"source": "table", "date": "d"})));
        r.metadata.insert("short".into(), json!("s"));
        assert!(!r.cap_fields());
        assert!(r.metadata.shares_price_table());
        let long = std::sync::Arc::new(json!({"source": "t".repeat(5000)}));
        r.metadata.share_price_table(long.clone());
        assert!(r.cap_fields());
        assert_eq!(
            r.metadata["price_table"]["source"].as_str().map(str::len),
            Some(4096)
        );
        assert_eq!(r.metadata["truncated"], json!(["metadata.price_table"]));
        // The table's own value is untouched.
        assert_eq!(long["source"].as_str().map(str::len), Some(5000));
    }

    proptest::proptest! {
        /// One walk gives what capping and then measuring give: the same record, the same
        /// size, whether or not something was over its cap.
        #[test]
        fn capped_size_is_cap_fields_then_approx_size(
            model in proptest::option::of(0usize..300),
            app in 250usize..260,
            endpoint in 2040usize..2056,
            kind in proptest::option::of(250usize..260),
            message in 1020usize..1030,
            tags in proptest::collection::vec((0usize..3, 4090usize..4100), 0..4),
            priced in proptest::bool::ANY,
        ) {
            let mut r = ActivityRecord::new(RecordKind::Request);
            r.model = model.map(|n| "m".repeat(n));
            r.app = "a".repeat(app).into();
            r.endpoint = "/".repeat(endpoint).into();
            r.error = Some(ProviderError { kind: kind.map(|n| "k".repeat(n)), message: "x".repeat(message) });
            for (i, (shape, len)) in tags.into_iter().enumerate() {
                let text = "t".repeat(len);
                let value = match shape {
                    0 => json!(text),
                    1 => json!([1, text]),
                    _ => json!({"inner": {"deep": text}, "n": null}),
                };
                r.metadata.insert(format!("tag{i}"), value);
            }
            if priced {
                r.metadata.share_price_table(std::sync::Arc::new(json!({"source": "s", "date": "d"})));
            }
            let mut want = r.clone();
            want.cap_fields();
            let size = r.capped_size();
            proptest::prop_assert_eq!(&r, &want);
            proptest::prop_assert_eq!(size, want.approx_size());
        }
    }

    #[test]
    fn the_size_grows_with_what_the_record_holds() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        let empty = r.approx_size();
        assert!(empty >= size_of::<ActivityRecord>());
        r.model = Some("m".repeat(1000));
        r.metadata.insert("k".into(), json!(["x".repeat(5000)]));
        assert!(r.approx_size() >= empty + 6000);
    }
}
