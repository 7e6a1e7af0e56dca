//! JSON text for a record's strings and nested parts — the metadata object, the cost and
//! usage details — byte for byte as serde_json writes them, for the two places that write a
//! record's JSON by hand: the spool's line (`writer::line`) and the SQL stores' JSON columns
//! (`sink::sql::encode`).
//!
//! serde_json escapes every key and string a byte at a time (≈ 11 instructions a byte), and
//! rust_decimal writes a decimal by dividing a 96-bit number by ten for each digit (≈ 1,000
//! instructions for a cost). Here a string that needs no escaping is copied between quotes
//! after one pass finds nothing to escape (one with something goes through serde_json), a
//! decimal whose mantissa fits 64 bits — every realistic amount — is written from itoa's
//! digits of it, counts by itoa, and only the metadata's numbers by serde_json. The tests
//! compare every writer with serde_json's and rust_decimal's text, and the spool line's whole
//! lines with serde_json's for arbitrary records.

use std::fmt::Write as _;
use std::io;

use rust_decimal::Decimal;
use serde_json::{Number, Value};

use crate::record::{CostDetails, Metadata, UsageCounts};

/// Where JSON text goes: the spool's line (`Vec<u8>`) or a column's text (`String`, written
/// as text so that it needs no UTF-8 check after).
pub(crate) trait JsonOut {
    /// Appends `s` as it is.
    fn text(&mut self, s: &str);
    /// Appends `s` as a JSON string that needs escaping, as serde_json escapes it (rare: the
    /// common case is [`string`]'s copy).
    fn escaped(&mut self, s: &str) -> io::Result<()>;
    /// Appends `n` as serde_json writes it.
    fn number(&mut self, n: &Number);
}

impl JsonOut for Vec<u8> {
    fn text(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    fn escaped(&mut self, s: &str) -> io::Result<()> {
        serde_json::to_writer(self, s).map_err(io::Error::other)
    }

    fn number(&mut self, n: &Number) {
        // Writing a number to a vector cannot fail.
        let _ = serde_json::to_writer(self, n);
    }
}

impl JsonOut for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }

    fn escaped(&mut self, s: &str) -> io::Result<()> {
        self.push_str(&serde_json::to_string(s).map_err(io::Error::other)?);
        Ok(())
    }

    fn number(&mut self, n: &Number) {
        // A number's `Display` is serde_json's text for it (itoa's, ryu's); a `String`
        // cannot fail to take it.
        let _ = write!(self, "{n}");
    }
}

/// Appends `s` as a JSON string: copied as it is between quotes when nothing in it needs
/// escaping, else as serde_json escapes it.
pub(crate) fn string(out: &mut impl JsonOut, s: &str) -> io::Result<()> {
    // No early exit, so that the compiler can test many bytes a step.
    let escape = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escape {
        return out.escaped(s);
    }
    quoted(out, s);
    Ok(())
}

/// Appends `s` between quotes, unescaped: for text known to need no escaping (an enum's
/// name, digits).
pub(crate) fn quoted(out: &mut impl JsonOut, s: &str) {
    out.text("\"");
    out.text(s);
    out.text("\"");
}

/// Appends `value` as serde_json writes it (compact; an object's members in its map's order):
/// strings through [`string`], numbers as serde_json writes them.
pub(crate) fn value(out: &mut impl JsonOut, value: &Value) -> io::Result<()> {
    match value {
        Value::String(s) => string(out, s),
        Value::Object(map) => object(out, map.iter().map(|(k, v)| (k.as_str(), v)), self::value),
        Value::Array(items) => list(out, ["[", "]"], items, self::value),
        Value::Number(n) => {
            out.number(n);
            Ok(())
        }
        Value::Bool(b) => {
            out.text(if *b { "true" } else { "false" });
            Ok(())
        }
        Value::Null => {
            out.text("null");
            Ok(())
        }
    }
}

/// Appends `value`'s text exactly as `value.to_string()` writes it: the sign, the whole part
/// (`0` when there is none), then the point and `scale` digits of fraction.
pub(crate) fn decimal(out: &mut impl JsonOut, value: &Decimal) {
    let Ok(mantissa) = u64::try_from(value.mantissa().unsigned_abs()) else {
        // Rare (more than 64 bits of mantissa): through rust_decimal itself.
        out.text(&value.to_string());
        return;
    };
    if value.is_sign_negative() {
        out.text("-");
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(mantissa);
    let scale = value.scale() as usize;
    match digits.len().checked_sub(scale) {
        Some(whole) if whole > 0 => {
            out.text(&digits[..whole]);
            if scale > 0 {
                out.text(".");
                out.text(&digits[whole..]);
            }
        }
        // Only fraction: the zeros the scale asks for before the digits (at most 27).
        _ => {
            out.text("0.");
            out.text(&ZEROS[..scale - digits.len()]);
            out.text(digits);
        }
    }
}

/// Enough zeros for any scale (rust_decimal's is at most 28).
const ZEROS: &str = "0000000000000000000000000000";

/// Appends `value` as a JSON string of its exact text, as rust_decimal's serde writes it.
pub(crate) fn decimal_string(out: &mut impl JsonOut, value: &Decimal) {
    out.text("\"");
    decimal(out, value);
    out.text("\"");
}

/// Appends the metadata object as serde_json writes it (`{"k":v,…}` in the order of
/// [`Metadata::iter`]).
pub(crate) fn metadata(out: &mut impl JsonOut, metadata: &Metadata) -> io::Result<()> {
    object(out, metadata.iter(), value)
}

/// Appends a record's `cost_details` as serde_json writes them: `{"input":"0.000001",…}`, in
/// key order, each amount its exact decimal text.
pub(crate) fn cost_details(out: &mut impl JsonOut, details: &CostDetails) -> io::Result<()> {
    object(out, details.iter(), |out, amount| {
        decimal_string(out, amount);
        Ok(())
    })
}

/// Appends a record's `usage_details` as serde_json writes them: `{"input_audio_tokens":0,…}`,
/// in key order.
pub(crate) fn usage_details(out: &mut impl JsonOut, details: &UsageCounts) -> io::Result<()> {
    object(out, details.iter(), |out, count| {
        out.text(itoa::Buffer::new().format(*count));
        Ok(())
    })
}

/// Appends `{"k":v,…}`: each key through [`string`], each value by `value`.
fn object<'a, O: JsonOut, V: ?Sized + 'a>(
    out: &mut O,
    members: impl IntoIterator<Item = (&'a str, &'a V)>,
    mut value: impl FnMut(&mut O, &V) -> io::Result<()>,
) -> io::Result<()> {
    list(out, ["{", "}"], members, |out, (k, v)| {
        string(out, k)?;
        out.text(":");
        value(out, v)
    })
}

/// Appends `items` between `brackets`, separated by commas, each by `write`.
fn list<O: JsonOut, T>(
    out: &mut O,
    [open, close]: [&str; 2],
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut O, T) -> io::Result<()>,
) -> io::Result<()> {
    out.text(open);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.text(",");
        }
        write(out, item)?;
    }
    out.text(close);
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;

    /// What `$write` appends with `$out` the spool's bytes, and with it a column's text: the
    /// same text, returned.
    macro_rules! text {
        (|$out:ident| $write:expr) => {{
            let mut bytes = Vec::new();
            {
                let $out = &mut bytes;
                $write;
            }
            let mut text = String::new();
            {
                let $out = &mut text;
                $write;
            }
            assert_eq!(text.as_bytes(), bytes);
            text
        }};
    }

    /// Strings with everything JSON must escape, and plain ones.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z_]{1,12}", "[\"\\\\\u{0}-\u{1f}a\u{7f}é😀]{0,8}"]
    }

    /// Any JSON value, nested a few levels.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            key().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(key(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn same(value: Decimal) {
        assert_eq!(
            text!(|o| decimal(o, &value)),
            value.to_string(),
            "{value:?}"
        );
        assert_eq!(
            text!(|o| decimal_string(o, &value)),
            serde_json::to_string(&value).unwrap(),
        );
    }

    #[test]
    fn decimal_edges_read_as_rust_decimal_writes_them() {
        for (m, scale) in [
            (0i64, 0u32),
            (0, 3),
            (5, 3),
            (-5, 3),
            (123, 3),
            (1234, 2),
            (7, 0),
            (-7, 0),
        ] {
            same(Decimal::new(m, scale));
        }
        same(Decimal::new(i64::MAX, 28));
        same(Decimal::new(1, 28));
        same(Decimal::new(i64::MIN, 5));
        same(Decimal::MAX);
        same(Decimal::MIN);
        same(-Decimal::new(0, 4));
    }

    proptest! {
        #[test]
        fn every_decimal_reads_as_rust_decimal_writes_it(
            lo in any::<u32>(),
            mid in any::<u32>(),
            hi in prop_oneof![Just(0u32), any::<u32>()],
            negative in any::<bool>(),
            scale in 0u32..=28,
        ) {
            same(Decimal::from_parts(lo, mid, hi, negative, scale));
        }

        #[test]
        fn strings_are_serde_json_s(s in any::<String>(), t in key()) {
            for s in [&s, &t] {
                prop_assert_eq!(text!(|o| string(o, s).unwrap()), serde_json::to_string(s).unwrap());
            }
        }

        #[test]
        fn values_are_serde_json_s(v in json()) {
            prop_assert_eq!(text!(|o| value(o, &v).unwrap()), serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn details_are_serde_json_s(
            costs in proptest::collection::vec((key(), any::<i64>(), 0u32..=28), 0..6),
            counts in proptest::collection::vec((key(), any::<u64>()), 0..6),
        ) {
            let costs: CostDetails = costs
                .iter()
                .map(|(k, m, s)| (k.clone(), Decimal::new(*m, *s)))
                .collect();
            prop_assert_eq!(text!(|o| cost_details(o, &costs).unwrap()), serde_json::to_string(&costs).unwrap());
            let counts: UsageCounts = counts.into_iter().collect();
            prop_assert_eq!(text!(|o| usage_details(o, &counts).unwrap()), serde_json::to_string(&counts).unwrap());
        }
    }

    #[test]
    fn metadata_is_serde_json_s() {
        let mut m = Metadata::new();
        m.insert("request_id".into(), Value::from("req-1"));
        m.insert("quote\"d\n".into(), Value::from("tab\there"));
        m.insert("n".into(), Value::from(3));
        m.insert(
            "nested".into(),
            serde_json::json!({"a": [1, "\u{0}", 2.5], "b": null}),
        );
        assert_eq!(
            text!(|o| metadata(o, &m).unwrap()),
            serde_json::to_string(&m).unwrap()
        );
        assert_eq!(text!(|o| metadata(o, &Metadata::new()).unwrap()), "{}");
    }
}
