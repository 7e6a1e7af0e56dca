//! [`Window`] and [`Metric`]: what a budget counts, and over which UTC calendar period.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A UTC calendar period a counter covers. A request belongs to the window in which it was
/// admitted; its settlement goes to that window even when it ends after the window did.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tower_activity::budget::Window;
///
/// let now = Utc.with_ymd_and_hms(2026, 2, 14, 13, 45, 10).unwrap();
/// assert_eq!(Window::Day.start(now), Utc.with_ymd_and_hms(2026, 2, 14, 0, 0, 0).unwrap());
/// assert_eq!(Window::Month.end(now), Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()));
/// assert_eq!(Window::Total.end(now), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// A UTC minute (`…:MM:00` to the next minute).
    Minute,
    /// A UTC hour.
    Hour,
    /// A UTC day (midnight to midnight UTC).
    Day,
    /// A UTC calendar month (the 1st, 00:00 UTC, to the next 1st).
    Month,
    /// Never resets: a balance. A limit on it is a credit line: running out is a `402`, not a
    /// `429` (waiting does not help).
    Total,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 5] = [
        Window::Minute,
        Window::Hour,
        Window::Day,
        Window::Month,
        Window::Total,
    ];

    /// The name used in stores, events and JSON (`minute`, `hour`, `day`, `month`, `total`).
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
            Window::Total => "total",
        }
    }

    /// The start of the window that contains `at` (the Unix epoch for [`Window::Total`]).
    pub fn start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let day = || Utc.from_utc_datetime(&at.date_naive().and_time(chrono::NaiveTime::MIN));
        match self {
            Window::Minute => day() + Duration::minutes(i64::from(at.hour() * 60 + at.minute())),
            Window::Hour => day() + Duration::hours(i64::from(at.hour())),
            Window::Day => day(),
            Window::Month => Utc
                .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::UNIX_EPOCH),
            Window::Total => DateTime::UNIX_EPOCH,
        }
    }

    /// The end (exclusive) of the window that contains `at`; `None` for [`Window::Total`].
    pub fn end(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.start(at);
        Some(match self {
            Window::Minute => start + Duration::minutes(1),
            Window::Hour => start + Duration::hours(1),
            Window::Day => start + Duration::days(1),
            Window::Month => {
                let (y, m) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?
            }
            Window::Total => return None,
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Window {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Window::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "window",
                name: s.to_owned(),
                expected: "minute, hour, day, month or total",
            })
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// US dollars, exact (the records' `cost_usd`; a record without a cost adds 0).
    Spend,
    /// Input plus output tokens (an unknown count adds 0).
    Tokens,
    /// Requests admitted.
    Requests,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 3] = [Metric::Spend, Metric::Tokens, Metric::Requests];

    /// The name used in stores, events and JSON (`spend`, `tokens`, `requests`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Spend => "spend",
            Metric::Tokens => "tokens",
            Metric::Requests => "requests",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "metric",
                name: s.to_owned(),
                expected: "spend, tokens or requests",
            })
    }
}

/// A window or metric name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}: use {expected}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
    expected: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_windows() {
        let t = at("2024-12-31T23:59:59.999999Z");
        assert_eq!(Window::Minute.start(t), at("2024-12-31T23:59:00Z"));
        assert_eq!(Window::Minute.end(t), Some(at("2025-01-01T00:00:00Z")));
        assert_eq!(Window::Hour.start(t), at("2024-12-31T23:00:00Z"));
        assert_eq!(Window::Day.end(t), Some(at("2025-01-01T00:00:00Z")));
        assert_eq!(Window::Month.start(t), at("2024-12-01T00:00:00Z"));
        assert_eq!(Window::Month.end(t), Some(at("2025-01-01T00:00:00Z")));
        // February of a leap year.
        assert_eq!(
            Window::Month.end(at("2024-02-10T00:00:00Z")),
            Some(at("2024-03-01T00:00:00Z"))
        );
        // The first instant of a window is in it.
        let midnight = at("2025-01-01T00:00:00Z");
        assert_eq!(Window::Day.start(midnight), midnight);
        assert_eq!(Window::Total.start(t), DateTime::UNIX_EPOCH);
    }

    #[test]
    fn names_round_trip() {
        for w in Window::ALL {
            assert_eq!(w.as_str().parse::<Window>(), Ok(w));
        }
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>(), Ok(m));
        }
        let e = "week".parse::<Window>().unwrap_err().to_string();
        assert!(e.contains("\"week\"") && e.contains("minute, hour"), "{e}");
    }
}
