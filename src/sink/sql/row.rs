//! The shared column list and decoding a row back into an [`ActivityRecord`].
//!
//! Both backends select the same columns in the same order; the few that PostgreSQL stores in
//! a richer type (`TIMESTAMPTZ`, `NUMERIC`, `JSONB`) are selected as what SQLite stores
//! (microseconds, decimal text, JSON text), so one generic decoder serves both.

use chrono::{DateTime, Days, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use super::{DecodeError, StorageError};
use crate::query::{QueryError, Stats, StatsBuilder};
use crate::record::{
    ActivityRecord, CostSource, FinishReason, LlmApi, Metadata, Outcome, ProviderError, RecordKind,
    UsageSource, word,
};

/// The record's columns, in the order of [`EncodedRecord`](super::EncodedRecord) and of the
/// decoder.
pub(crate) const COLUMNS: [&str; 34] = [
    "id",
    "kind",
    "timestamp",
    "user_id",
    "session_id",
    "app",
    "endpoint",
    "api",
    "model",
    "provider",
    "upstream",
    "stream",
    "status_code",
    "outcome",
    "finish_reason",
    "native_finish_reason",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_source",
    "cost_usd",
    "ttft_ms",
    "latency_ms",
    "speed",
    "error_type",
    "error_message",
    "metadata",
    "service_tier",
    "cost_source",
    "cost_details",
    "usage_details",
];

/// Every value of each enum column, in one order: the decoder looks a stored name up here, and
/// SQLite's insert binds a value as its position here (`sqlite/mod.rs`). A variant missing
/// from its list could not be read back (nor, in SQLite, written: the batch fails for it);
/// the `every_variant_is_listed` test matches each enum exhaustively.
pub(crate) const KINDS: [RecordKind; 2] = [RecordKind::Request, RecordKind::Event];
/// See [`KINDS`].
pub(crate) const APIS: [LlmApi; 6] = [
    LlmApi::OpenAiChat,
    LlmApi::OpenAiResponses,
    LlmApi::OpenAiEmbeddings,
    LlmApi::AnthropicMessages,
    LlmApi::GeminiGenerate,
    LlmApi::Unknown,
];
/// See [`KINDS`].
pub(crate) const OUTCOMES: [Outcome; 4] = [
    Outcome::Ok,
    Outcome::Error,
    Outcome::Cancelled,
    Outcome::Interrupted,
];
/// See [`KINDS`].
pub(crate) const FINISH_REASONS: [FinishReason; 7] = [
    FinishReason::Stop,
    FinishReason::Length,
    FinishReason::ToolCalls,
    FinishReason::ContentFilter,
    FinishReason::Error,
    FinishReason::Cancelled,
    FinishReason::Other,
];
/// See [`KINDS`].
pub(crate) const USAGE_SOURCES: [UsageSource; 3] = [
    UsageSource::Reported,
    UsageSource::Estimated,
    UsageSource::None,
];
/// See [`KINDS`].
pub(crate) const COST_SOURCES: [CostSource; 2] = [CostSource::Reported, CostSource::Computed];

/// A record kind's stored name.
pub(crate) fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Request => "request",
        RecordKind::Event => "event",
    }
}

/// The SQL dialect: how a backend reads the richer columns and writes placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// A build with one backend constructs one variant.
#[cfg_attr(not(all(feature = "postgres", feature = "sqlite")), allow(dead_code))]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The `n`-th (1-based) bind placeholder.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// The `n`-th placeholder of a day bound as `YYYY-MM-DD` text: PostgreSQL casts it to the
    /// `day` column's `DATE`; SQLite stores the text.
    pub(crate) fn day_placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}::date"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }
}

/// The select list (or, with `None`, the plain column list for an insert).
pub(crate) fn columns(dialect: Option<Dialect>) -> String {
    COLUMNS
        .iter()
        .map(|&c| match (dialect, c) {
            (Some(Dialect::Postgres), "timestamp") => {
                "(extract(epoch FROM timestamp) * 1000000)::int8".to_owned()
            }
            (
                Some(Dialect::Postgres),
                "cost_usd" | "metadata" | "cost_details" | "usage_details",
            ) => {
                format!("{c}::text")
            }
            _ => c.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads one row of the select list into a record.
pub(crate) fn decode_record<'r, R>(row: &'r R) -> Result<ActivityRecord, DecodeError>
where
    R: Row,
    usize: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let tokens = |i: usize| -> Result<Option<u64>, DecodeError> {
        row.try_get::<Option<i64>, _>(i)?
            .map(|n| u64::try_from(n).map_err(|_| format!("negative {} {n}", COLUMNS[i]).into()))
            .transpose()
    };
    let micros: i64 = row.try_get(2)?;
    let error_type: Option<String> = row.try_get(27)?;
    let error_message: Option<String> = row.try_get(28)?;
    let metadata: &str = row.try_get(29)?;
    let cost_details: Option<&str> = row.try_get(32)?;
    let usage_details: Option<&str> = row.try_get(33)?;
    Ok(ActivityRecord {
        id: row.try_get(0)?,
        kind: parse(row.try_get(1)?, &KINDS, kind_name)?,
        timestamp: DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| format!("timestamp out of range: {micros} µs"))?,
        user_id: row.try_get(3)?,
        session_id: row.try_get(4)?,
        app: row.try_get::<String, _>(5)?.into(),
        endpoint: row.try_get::<String, _>(6)?.into(),
        api: parse(row.try_get(7)?, &APIS, LlmApi::as_str)?,
        model: row.try_get(8)?,
        provider: row.try_get::<Option<String>, _>(9)?.map(Into::into),
        upstream: row.try_get(10)?,
        stream: row.try_get(11)?,
        status_code: row
            .try_get::<Option<i32>, _>(12)?
            .map(u16::try_from)
            .transpose()?,
        outcome: parse(row.try_get(13)?, &OUTCOMES, Outcome::as_str)?,
        finish_reason: row
            .try_get::<Option<&str>, _>(14)?
            .map(|name| parse(name, &FINISH_REASONS, FinishReason::as_str))
            .transpose()?,
        native_finish_reason: row.try_get::<Option<&str>, _>(15)?.map(word),
        input_tokens: tokens(16)?,
        output_tokens: tokens(17)?,
        total_tokens: tokens(18)?,
        cache_read_tokens: tokens(19)?,
        cache_write_tokens: tokens(20)?,
        reasoning_tokens: tokens(21)?,
        usage_source: parse(row.try_get(22)?, &USAGE_SOURCES, UsageSource::as_str)?,
        cost_usd: row
            .try_get::<Option<&str>, _>(23)?
            .map(decimal)
            .transpose()?,
        ttft_ms: row.try_get(24)?,
        latency_ms: row.try_get(25)?,
        speed: row.try_get(26)?,
        error: error_message.map(|message| ProviderError {
            kind: error_type,
            message,
        }),
        metadata: serde_json::from_str::<Metadata>(metadata)?,
        service_tier: row.try_get::<Option<&str>, _>(30)?.map(word),
        cost_source: row
            .try_get::<Option<&str>, _>(31)?
            .map(|name| parse(name, &COST_SOURCES, CostSource::as_str))
            .transpose()?,
        cost_details: cost_details.map(serde_json::from_str).transpose()?,
        usage_details: usage_details.map(serde_json::from_str).transpose()?,
    })
}

/// The [`Stats`] of `from`..=`to` from the stats query's rows (`day, model, provider,
/// requests, tokens, cost`, one per day, model and provider, with the day and the cost as
/// text), through [`StatsBuilder`] so that every store derives the same figures.
pub(crate) fn stats_from_rows<'r, R>(
    from: NaiveDate,
    to: NaiveDate,
    rows: &'r [R],
) -> Result<Stats, QueryError>
where
    R: Row,
    usize: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut builder = StatsBuilder::new(from, to);
    for row in rows {
        let decode = || -> Result<_, DecodeError> {
            let day: &str = row.try_get(0)?;
            let model: Option<String> = row.try_get(1)?;
            let provider: Option<String> = row.try_get(2)?;
            let requests = u64::try_from(row.try_get::<i64, _>(3)?)?;
            let tokens = u64::try_from(row.try_get::<i64, _>(4)?)?;
            Ok((
                day.parse()?,
                model,
                provider,
                requests,
                tokens,
                decimal(row.try_get(5)?)?,
            ))
        };
        let (day, model, provider, requests, tokens, cost) =
            decode().map_err(QueryError::Storage)?;
        builder.add(
            day,
            model.as_deref(),
            provider.as_deref(),
            requests,
            tokens,
            cost,
        );
    }
    Ok(builder.finish())
}

/// A decimal from the database's text; an exponent (`1E-7`) is accepted too.
pub(crate) fn decimal(text: &str) -> Result<Decimal, DecodeError> {
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|e| format!("cost {text:?} is not a decimal: {e}").into())
}

/// Looks a stored name up among the enum's values, by the enum's own `as_str`.
fn parse<T: Copy>(name: &str, all: &[T], as_str: fn(T) -> &'static str) -> Result<T, DecodeError> {
    all.iter()
        .copied()
        .find(|&v| as_str(v) == name)
        .ok_or_else(|| format!("unknown value {name:?} in the activity table").into())
}

/// The first day that `delete_older_than(days)` keeps: today and the `days − 1` days before
/// are kept, like the stats' `days=N` range, so that the last `days` days of stats never
/// change.
pub(crate) fn retention_cutoff(days: u32, today: NaiveDate) -> Result<NaiveDate, StorageError> {
    if days == 0 {
        return Err(StorageError::InvalidArgument {
            parameter: "days",
            reason: "must be at least 1 (1 keeps today only)",
        });
    }
    Ok(today
        .checked_sub_days(Days::new(u64::from(days - 1)))
        .unwrap_or(NaiveDate::MIN))
}

/// Midnight (UTC) at the start of `day`.
pub(crate) fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_reads_rich_columns_as_text() {
        let list = columns(Some(Dialect::Postgres));
        assert!(list.contains("cost_usd::text") && list.contains("metadata::text"));
        assert!(!columns(None).contains("::"));
        assert_eq!(columns(None).split(", ").count(), 34);
    }

    /// Each enum matched exhaustively: a new variant fails to compile here until it is added
    /// to its list (and so can be stored and read back).
    #[test]
    fn every_variant_is_listed() {
        let listed = |found: bool, what: &str| assert!(found, "{what} is not in its list");
        for k in [RecordKind::Request, RecordKind::Event] {
            match k {
                RecordKind::Request | RecordKind::Event => listed(KINDS.contains(&k), "kind"),
            }
        }
        let apis = [
            LlmApi::OpenAiChat,
            LlmApi::OpenAiResponses,
            LlmApi::OpenAiEmbeddings,
            LlmApi::AnthropicMessages,
            LlmApi::GeminiGenerate,
            LlmApi::Unknown,
        ];
        for a in apis {
            match a {
                LlmApi::OpenAiChat
                | LlmApi::OpenAiResponses
                | LlmApi::OpenAiEmbeddings
                | LlmApi::AnthropicMessages
                | LlmApi::GeminiGenerate
                | LlmApi::Unknown => listed(APIS.contains(&a), a.as_str()),
            }
        }
        for o in [
            Outcome::Ok,
            Outcome::Error,
            Outcome::Cancelled,
            Outcome::Interrupted,
        ] {
            match o {
                Outcome::Ok | Outcome::Error | Outcome::Cancelled | Outcome::Interrupted => {
                    listed(OUTCOMES.contains(&o), o.as_str())
                }
            }
        }
        for f in [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ToolCalls,
            FinishReason::ContentFilter,
            FinishReason::Error,
            FinishReason::Cancelled,
            FinishReason::Other,
        ] {
            match f {
                FinishReason::Stop
                | FinishReason::Length
                | FinishReason::ToolCalls
                | FinishReason::ContentFilter
                | FinishReason::Error
                | FinishReason::Cancelled
                | FinishReason::Other => listed(FINISH_REASONS.contains(&f), f.as_str()),
            }
        }
        for u in [
            UsageSource::Reported,
            UsageSource::Estimated,
            UsageSource::None,
        ] {
            match u {
                UsageSource::Reported | UsageSource::Estimated | UsageSource::None => {
                    listed(USAGE_SOURCES.contains(&u), u.as_str())
                }
            }
        }
        for c in [CostSource::Reported, CostSource::Computed] {
            match c {
                CostSource::Reported | CostSource::Computed => {
                    listed(COST_SOURCES.contains(&c), c.as_str())
                }
            }
        }
    }

    #[test]
    fn retention_keeps_whole_days_like_the_stats_range() {
        let today: NaiveDate = "2026-11-25".parse().unwrap();
        assert_eq!(retention_cutoff(1, today).unwrap(), today);
        assert_eq!(
            retention_cutoff(30, today).unwrap().to_string(),
            "2026-10-27"
        );
        assert!(retention_cutoff(0, today).is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(
            decimal("0.000000000000000001").unwrap().to_string(),
            "0.000000000000000001"
        );
        assert_eq!(decimal("1E-7").unwrap(), Decimal::new(1, 7));
        assert!(decimal("abc").is_err());
    }
}
