//! [`StatsQuery`] and [`LogQuery`]: the parameters of the activity API, parsed and validated
//! once for every store.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::QueryError;
use crate::record::RecordKind;

/// The range of a [`StatsQuery`] without parameters: today and the 6 days before.
pub const DEFAULT_STATS_DAYS: u32 = 7;
/// The longest range a query may ask for, in days (about ten years).
pub const MAX_RANGE_DAYS: u32 = 3650;
/// Rows per log page when `limit` is not given.
pub const DEFAULT_LOG_LIMIT: u32 = 50;
/// The largest `limit` a log page may ask for.
pub const MAX_LOG_LIMIT: u32 = 1000;

/// The range and scope of a stats query: whole UTC days.
///
/// Query-string parameters ([`StatsQuery::parse`]):
///
/// | parameter | meaning |
/// |---|---|
/// | `days` | today (UTC) and the `days − 1` days before; 1–3650, default 7 |
/// | `from`, `to` | first and last day, inclusive (`YYYY-MM-DD`, or an RFC 3339 instant whose UTC date is used); `to` defaults to today, `from` to 6 days before `to` |
/// | `include_events` | `true` to count application events (`kind: "event"`) too; default `false` |
///
/// `days` cannot be combined with `from`/`to`. Unknown parameters are ignored (a cache-busting
/// `_=…` must not break a dashboard).
///
/// Whole days, not "now − N × 24 h": the SQL stores answer from a daily rollup, so a range
/// that starts mid-day would need a scan of raw rows. `days=1` is today so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    span: Span,
    /// Whether application events count as requests (they carry no tokens or cost).
    pub include_events: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Days(u32),
    Dates {
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
}

impl Default for StatsQuery {
    fn default() -> Self {
        StatsQuery {
            span: Span::Days(DEFAULT_STATS_DAYS),
            include_events: false,
        }
    }
}

impl StatsQuery {
    /// Today (UTC) and the `days − 1` days before; `days` must be 1–3650.
    pub fn last_days(days: u32) -> Result<Self, QueryError> {
        if !(1..=MAX_RANGE_DAYS).contains(&days) {
            return Err(QueryError::invalid(
                "days",
                &days.to_string(),
                format!("must be a whole number of days from 1 to {MAX_RANGE_DAYS}"),
            ));
        }
        Ok(StatsQuery {
            span: Span::Days(days),
            include_events: false,
        })
    }

    /// The days from `from` to `to`, both included; at most 3650 days.
    pub fn between(from: NaiveDate, to: NaiveDate) -> Result<Self, QueryError> {
        check_order(from, to)?;
        Ok(StatsQuery {
            span: Span::Dates {
                from: Some(from),
                to: Some(to),
            },
            include_events: false,
        })
    }

    /// Parses query-string pairs (already percent-decoded), e.g. from axum's
    /// `Query<Vec<(String, String)>>`. See the type's docs for the parameters.
    ///
    /// ```
    /// use tower_activity::query::StatsQuery;
    ///
    /// let q = StatsQuery::parse([("from", "2026-11-01"), ("to", "2026-11-30")]).unwrap();
    /// let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
    /// assert_eq!(q.dates(today).0.to_string(), "2026-11-01");
    ///
    /// let err = StatsQuery::parse([("days", "0")]).unwrap_err();
    /// assert_eq!(err.parameter(), Some("days"));
    /// ```
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, QueryError> {
        let (mut days, mut from, mut to, mut include_events) = (None, None, None, false);
        for (key, value) in pairs {
            let value = value.as_ref();
            match key.as_ref() {
                "days" => days = Some(parse_days(value)?),
                "from" => from = Some(parse_day("from", value)?),
                "to" => to = Some(parse_day("to", value)?),
                "include_events" => include_events = parse_bool("include_events", value)?,
                _ => {}
            }
        }
        let mut query = match (days, from, to) {
            (Some(days), None, None) => StatsQuery::last_days(days)?,
            (Some(days), _, _) => {
                return Err(QueryError::invalid(
                    "days",
                    &days.to_string(),
                    "cannot be combined with `from`/`to`; give either `days` or a date range",
                ));
            }
            (None, Some(from), Some(to)) => StatsQuery::between(from, to)?,
            (None, from, to) => StatsQuery {
                span: Span::Dates { from, to },
                include_events: false,
            },
        };
        query.include_events = include_events;
        Ok(query)
    }

    /// The first and last day of the range (both included) when today is `today` (UTC).
    ///
    /// An open range is completed from `today` and cut to [`MAX_RANGE_DAYS`]; a `from` after
    /// today gives that single (empty) day.
    pub fn dates(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self.span {
            Span::Days(days) => (back(today, days - 1), today),
            Span::Dates { from, to } => {
                let to = to.unwrap_or_else(|| today.max(from.unwrap_or(today)));
                let earliest = back(to, MAX_RANGE_DAYS - 1);
                let from = from
                    .unwrap_or_else(|| back(to, DEFAULT_STATS_DAYS - 1))
                    .max(earliest);
                (from, to)
            }
        }
    }
}

fn back(day: NaiveDate, days: u32) -> NaiveDate {
    day.checked_sub_days(Days::new(days.into()))
        .unwrap_or(NaiveDate::MIN)
}

fn check_order(from: NaiveDate, to: NaiveDate) -> Result<(), QueryError> {
    if from > to {
        return Err(QueryError::invalid(
            "from",
            &from.to_string(),
            format!("is after `to` ({to})"),
        ));
    }
    if (to - from).num_days() >= i64::from(MAX_RANGE_DAYS) {
        return Err(QueryError::invalid(
            "from",
            &from.to_string(),
            format!("the range to {to} is longer than {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(())
}

/// One page of the log: filters, page size and position.
///
/// Query-string parameters ([`LogQuery::parse`]):
///
/// | parameter | meaning |
/// |---|---|
/// | `limit` | rows per page, 1–1000, default 50 |
/// | `page` | 1-based page number (`offset = (page − 1) × limit`) |
/// | `offset` | rows to skip; not with `page` |
/// | `cursor` | the `next_cursor` of the previous page: constant-time deep paging; not with `page`/`offset` |
/// | `from`, `to` | `YYYY-MM-DD` (from the start of `from` to the end of `to`, UTC) or RFC 3339 instants (`from` included, `to` excluded) |
/// | `model`, `provider` | exact match |
/// | `kind` | `request` or `event`; default both |
///
/// Rows come newest first (`timestamp` then `id`, descending). Unknown parameters are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Rows per page, 1–[`MAX_LOG_LIMIT`].
    pub limit: u32,
    /// Rows skipped before the page (after the cursor, when there is one).
    pub offset: u64,
    /// Start after this row (keyset pagination).
    pub cursor: Option<Cursor>,
    /// Only rows at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only rows before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Only rows of this model.
    pub model: Option<String>,
    /// Only rows of this provider.
    pub provider: Option<String>,
    /// Only requests or only events.
    pub kind: Option<RecordKind>,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            limit: DEFAULT_LOG_LIMIT,
            offset: 0,
            cursor: None,
            from: None,
            to: None,
            model: None,
            provider: None,
            kind: None,
        }
    }
}

impl LogQuery {
    /// Parses query-string pairs (already percent-decoded). See the type's docs.
    ///
    /// ```
    /// use tower_activity::query::LogQuery;
    ///
    /// let q = LogQuery::parse([("limit", "20"), ("page", "3"), ("model", "gpt-4o")]).unwrap();
    /// assert_eq!((q.limit, q.offset, q.page()), (20, 40, Some(3)));
    ///
    /// let err = LogQuery::parse([("page", "2"), ("offset", "10")]).unwrap_err();
    /// assert_eq!(err.parameter(), Some("offset"));
    /// ```
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, QueryError> {
        let mut query = LogQuery::default();
        let (mut page, mut offset): (Option<u64>, Option<u64>) = (None, None);
        for (key, value) in pairs {
            let value = value.as_ref();
            match key.as_ref() {
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                        .ok_or_else(|| {
                            QueryError::invalid(
                                "limit",
                                value,
                                format!("must be a whole number from 1 to {MAX_LOG_LIMIT}"),
                            )
                        })?
                }
                "page" => {
                    page = Some(value.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                        QueryError::invalid("page", value, "must be a whole number from 1")
                    })?)
                }
                "offset" => {
                    offset = Some(value.parse().map_err(|_| {
                        QueryError::invalid("offset", value, "must be a whole number from 0")
                    })?)
                }
                "cursor" => query.cursor = Some(value.parse()?),
                "from" => query.from = Some(parse_instant("from", value, false)?),
                "to" => query.to = Some(parse_instant("to", value, true)?),
                "model" => query.model = Some(value.to_owned()),
                "provider" => query.provider = Some(value.to_owned()),
                "kind" => {
                    query.kind = Some(match value {
                        "request" => RecordKind::Request,
                        "event" => RecordKind::Event,
                        _ => {
                            return Err(QueryError::invalid(
                                "kind",
                                value,
                                "must be `request` or `event`",
                            ));
                        }
                    })
                }
                _ => {}
            }
        }
        if let (Some(page), Some(offset)) = (page, offset) {
            return Err(QueryError::invalid(
                "offset",
                &offset.to_string(),
                format!("cannot be combined with `page` ({page}); give one of them"),
            ));
        }
        if query.cursor.is_some() && (page.is_some() || offset.is_some()) {
            return Err(QueryError::invalid(
                "cursor",
                &query.cursor.map(|c| c.to_string()).unwrap_or_default(),
                "cannot be combined with `page` or `offset`",
            ));
        }
        if let (Some(from), Some(to)) = (query.from, query.to) {
            if from >= to {
                return Err(QueryError::invalid(
                    "from",
                    &from.to_rfc3339(),
                    format!("is not before `to` ({})", to.to_rfc3339()),
                ));
            }
        }
        query.offset = match (page, offset) {
            (Some(page), _) => (page - 1).saturating_mul(query.limit.into()),
            (None, Some(offset)) => offset,
            (None, None) => 0,
        };
        Ok(query)
    }

    /// The 1-based page number of an offset page (`offset / limit + 1`); `None` for a cursor
    /// page, whose position is not counted.
    pub fn page(&self) -> Option<u64> {
        match self.cursor {
            Some(_) => None,
            None => Some(self.offset / u64::from(self.limit.max(1)) + 1),
        }
    }

    /// The page size, clamped to 1–[`MAX_LOG_LIMIT`] (fields are public; stores use this).
    pub fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LOG_LIMIT)
    }
}

/// A position in the log (`timestamp`, `id` of the last row of a page), written as 48 hex
/// digits so that it travels in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The row's timestamp (microsecond precision).
    pub timestamp: DateTime<Utc>,
    /// The row's id.
    pub id: Uuid,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:016x}{}",
            self.timestamp.timestamp_micros() as u64,
            self.id.simple()
        )
    }
}

impl FromStr for Cursor {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, QueryError> {
        let bad = || {
            QueryError::invalid(
                "cursor",
                s,
                "is not a cursor; pass the `next_cursor` of the previous page unchanged",
            )
        };
        if s.len() != 48 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let micros = u64::from_str_radix(&s[..16], 16).map_err(|_| bad())? as i64;
        let timestamp = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = Uuid::try_parse(&s[16..]).map_err(|_| bad())?;
        Ok(Cursor { timestamp, id })
    }
}

fn parse_days(value: &str) -> Result<u32, QueryError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=MAX_RANGE_DAYS).contains(n))
        .ok_or_else(|| {
            QueryError::invalid(
                "days",
                value,
                format!("must be a whole number of days from 1 to {MAX_RANGE_DAYS}"),
            )
        })
}

fn parse_bool(parameter: &'static str, value: &str) -> Result<bool, QueryError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(QueryError::invalid(
            parameter,
            value,
            "must be `true` or `false`",
        )),
    }
}

const DATE_HELP: &str =
    "must be a date `YYYY-MM-DD` or an RFC 3339 instant (`2026-11-25T13:00:00Z`)";

fn parse_day(parameter: &'static str, value: &str) -> Result<NaiveDate, QueryError> {
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(day);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc).date_naive())
        .map_err(|_| QueryError::invalid(parameter, value, DATE_HELP))
}

/// A date means its start (`from`) or the start of the next day (`to`, exclusive).
fn parse_instant(
    parameter: &'static str,
    value: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, QueryError> {
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let day = if end_of_day {
            day.checked_add_days(Days::new(1)).unwrap_or(day)
        } else {
            day
        };
        return Ok(Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN)));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| QueryError::invalid(parameter, value, DATE_HELP))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn stats_ranges_are_whole_days_ending_today() {
        let today = day("2026-11-25");
        assert_eq!(
            StatsQuery::default().dates(today),
            (day("2026-11-19"), today)
        );
        let q = StatsQuery::parse([("days", "1")]).unwrap();
        assert_eq!(q.dates(today), (today, today));
        let q = StatsQuery::parse([("to", "2026-01-10")]).unwrap();
        assert_eq!(q.dates(today), (day("2026-01-04"), day("2026-01-10")));
        let q = StatsQuery::parse([("from", "2026-11-20T23:00:00-02:00")]).unwrap();
        assert_eq!(q.dates(today), (day("2026-11-21"), today));
        let q = StatsQuery::parse([("from", "2000-01-01")]).unwrap();
        assert_eq!(q.dates(today).0, day("2016-11-28"), "cut to 3650 days");
    }

    #[test]
    fn bad_stats_parameters_name_the_parameter() {
        for (pairs, parameter) in [
            (vec![("days", "0")], "days"),
            (vec![("days", "3651")], "days"),
            (vec![("days", "seven")], "days"),
            (vec![("days", "7"), ("from", "2026-01-01")], "days"),
            (vec![("from", "2026-02-01"), ("to", "2026-01-01")], "from"),
            (vec![("to", "yesterday")], "to"),
            (vec![("include_events", "yes")], "include_events"),
        ] {
            let err = StatsQuery::parse(pairs.clone()).unwrap_err();
            assert_eq!(err.parameter(), Some(parameter), "{pairs:?}: {err}");
        }
        assert!(StatsQuery::parse([("_", "123")]).is_ok(), "unknown ignored");
    }

    #[test]
    fn log_pages_and_bad_log_parameters() {
        let q = LogQuery::parse([("offset", "120"), ("limit", "50")]).unwrap();
        assert_eq!((q.offset, q.page()), (120, Some(3)));
        let q = LogQuery::parse([("from", "2026-11-01"), ("to", "2026-11-01")]).unwrap();
        assert_eq!(
            q.to.unwrap() - q.from.unwrap(),
            chrono::TimeDelta::days(1),
            "a date `to` includes the whole day"
        );
        for (pairs, parameter) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "1001")], "limit"),
            (vec![("page", "0")], "page"),
            (vec![("offset", "-1")], "offset"),
            (vec![("cursor", "zz")], "cursor"),
            (vec![("kind", "all")], "kind"),
            (vec![("from", "2026-11-02"), ("to", "2026-11-01")], "from"),
        ] {
            let err = LogQuery::parse(pairs.clone()).unwrap_err();
            assert_eq!(err.parameter(), Some(parameter), "{pairs:?}: {err}");
            assert!(err.to_string().contains(parameter));
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            timestamp: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        let text = c.to_string();
        assert_eq!(text.len(), 48);
        assert_eq!(text.parse::<Cursor>().unwrap(), c);
        let q = LogQuery::parse([("cursor", text.as_str())]).unwrap();
        assert_eq!((q.cursor, q.page()), (Some(c), None));
        assert!(
            LogQuery::parse([("cursor", text.as_str()), ("page", "2")])
                .unwrap_err()
                .parameter()
                == Some("cursor")
        );
        assert!(
            "é".repeat(24).parse::<Cursor>().is_err(),
            "no panic on multibyte"
        );
    }
}
