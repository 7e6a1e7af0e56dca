//! The record's `timestamp` written as serde's chrono support writes it (`2026-12-02T07:30:00.123456Z`:
//! the fraction in 3, 6 or 9 digits, none when zero), but in one `serialize_str` of a stack
//! buffer. chrono's own path formats through `Display` into `collect_str`, which hands the
//! JSON serializer one character at a time, each escaped on its own: a tenth of a record's
//! serialization, which the spool and the NATS sink pay per record. Years outside
//! `0..=9999` and leap seconds take chrono's path.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `#[serde(serialize_with)]` for a `DateTime<Utc>`.
pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match to_buf(t) {
        Some((buf, n)) => s.serialize_str(std::str::from_utf8(&buf[..n]).expect("ASCII digits")),
        None => t.serialize(s),
    }
}

/// `t` as the serializer above writes it, in a stack buffer with its length; `None` when
/// chrono's own format must be used.
pub(crate) fn to_buf(t: &DateTime<Utc>) -> Option<([u8; 30], usize)> {
    let mut buf = [0u8; 30];
    write(t, &mut buf).map(|n| (buf, n))
}

/// Writes `t` into `buf`, returning the length; `None` when chrono's own format must be used.
fn write(t: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nano = t.nanosecond();
    if nano >= 1_000_000_000 {
        return None;
    }
    let mut at = 0;
    for (value, digits, after) in [
        (year, 4, b'-'),
        (t.month(), 2, b'-'),
        (t.day(), 2, b'T'),
        (t.hour(), 2, b':'),
        (t.minute(), 2, b':'),
        (t.second(), 2, b'.'),
    ] {
        at = digits_at(buf, at, value, digits);
        buf[at] = after;
        at += 1;
    }
    // The dot stays only when a fraction follows.
    at = match nano {
        0 => at - 1,
        n if n % 1_000_000 == 0 => digits_at(buf, at, n / 1_000_000, 3),
        n if n % 1_000 == 0 => digits_at(buf, at, n / 1_000, 6),
        n => digits_at(buf, at, n, 9),
    };
    buf[at] = b'Z';
    Some(at + 1)
}

/// Writes `value` as `digits` decimal digits (zero-padded) at `at`; returns the end.
fn digits_at(buf: &mut [u8], at: usize, value: u32, digits: usize) -> usize {
    let mut rest = value;
    for slot in buf[at..at + digits].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    at + digits
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    /// What chrono's serde support writes, and what ours writes.
    fn both(t: DateTime<Utc>) -> (String, String) {
        #[derive(Serialize)]
        struct Ours(#[serde(serialize_with = "serialize")] DateTime<Utc>);
        (
            serde_json::to_string(&t).unwrap(),
            serde_json::to_string(&Ours(t)).unwrap(),
        )
    }

    #[test]
    fn fractions_of_every_width_and_the_edges_are_chronos() {
        let base = Utc.with_ymd_and_hms(2026, 12, 2, 7, 30, 5).unwrap();
        for nano in [
            0,
            1,
            999,
            1_000,
            120_000,
            5_000_000,
            123_456_789,
            999_999_999,
        ] {
            let t = base + chrono::Duration::nanoseconds(nano);
            let (chrono, ours) = both(t);
            assert_eq!(ours, chrono, "{nano} ns");
        }
        assert_eq!(both(base).1, "\"2026-12-02T07:30:05Z\"");
        for t in [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
        ] {
            let (chrono, ours) = both(t);
            assert_eq!(ours, chrono);
        }
        // A leap second (nanoseconds past 1e9) is chrono's to write.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let (chrono, ours) = both(leap);
        assert_eq!(ours, chrono);
    }

    proptest! {
        #[test]
        fn any_instant_is_written_as_chrono_writes_it(
            secs in -62_135_596_800i64..253_402_300_800i64,
            nano in prop_oneof![
                Just(0u32),
                (0u32..1_000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1_000),
                0u32..1_000_000_000,
            ],
        ) {
            let t = DateTime::from_timestamp(secs, nano).unwrap();
            let (chrono, ours) = both(t);
            prop_assert_eq!(ours, chrono);
        }
    }
}
