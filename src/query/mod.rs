//! [`ActivityQuery`]: the stats and log queries a dashboard reads, one trait for every store.
//!
//! A query has two halves. The parameters ([`StatsQuery`], [`LogQuery`]) are parsed and
//! validated from a request's query string by this module, so every store rejects the same
//! bad input with the same [`QueryError`] naming the parameter. The answer ([`Stats`],
//! [`LogPage`]) has one shape for every store; the SQL sinks compute the sums in SQL and this
//! module derives the averages, so every store returns the same digits.
//!
//! [`MemorySink`](crate::sink::MemorySink) implements the trait by brute force over its records: it
//! is the reference the SQL sinks are tested against.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use tower_activity::{ActivityRecord, ActivitySink, RecordKind};
//! use tower_activity::query::{ActivityQuery, LogQuery, StatsQuery};
//! use tower_activity::sink::MemorySink;
//!
//! let sink = MemorySink::new();
//! let mut record = ActivityRecord::new(RecordKind::Request);
//! record.user_id = Some("alice".into());
//! (record.input_tokens, record.output_tokens) = (Some(30), Some(12));
//! sink.write(&[record]).await.unwrap();
//!
//! let stats = sink.stats("alice", &StatsQuery::parse([("days", "7")]).unwrap()).await.unwrap();
//! assert_eq!((stats.total_requests, stats.total_tokens), (1, 42));
//! let page = sink.log("bob", &LogQuery::default()).await.unwrap();
//! assert_eq!(page.total, 0, "a user only ever sees their own rows");
//!
//! let err = LogQuery::parse([("limit", "5000")]).unwrap_err();
//! assert_eq!(err.parameter(), Some("limit"));
//! # }
//! ```

use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;

mod memory;
mod params;
mod response;

pub use self::params::{
    Cursor, DEFAULT_LOG_LIMIT, DEFAULT_STATS_DAYS, LogQuery, MAX_LOG_LIMIT, MAX_RANGE_DAYS,
    StatsQuery,
};
pub use self::response::{Breakdown, DailyStat, LogPage, Stats, StatsBuilder};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter has a value the query cannot use; the message says which and why. An HTTP
    /// API answers `400 Bad Request` with it.
    #[error("invalid parameter `{parameter}` = {value:?}: {reason}")]
    InvalidParameter {
        /// The parameter's name (`limit`, `from` …).
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it was refused and what is accepted.
        reason: String,
    },
    /// The store failed (connection lost, timeout …). An HTTP API answers `500` and logs it.
    #[error("activity store failed: {0}")]
    Storage(#[source] Box<dyn Error + Send + Sync>),
}

impl QueryError {
    /// The parameter at fault, for [`QueryError::InvalidParameter`].
    pub fn parameter(&self) -> Option<&'static str> {
        match self {
            QueryError::InvalidParameter { parameter, .. } => Some(parameter),
            QueryError::Storage(_) => None,
        }
    }

    /// A [`QueryError::Storage`] from any error.
    pub fn storage(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        QueryError::Storage(cause.into())
    }

    pub(crate) fn invalid(parameter: &'static str, value: &str, reason: impl Into<String>) -> Self {
        QueryError::InvalidParameter {
            parameter,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The activity API over a store: one user's stats and log, never another user's rows.
///
/// Implemented by [`MemorySink`](crate::sink::MemorySink) and the SQL sinks. Ranges are whole UTC
/// days for stats (see [`StatsQuery`]) and instants for the log (see [`LogQuery`]).
#[async_trait]
pub trait ActivityQuery: Send + Sync + 'static {
    /// Totals, averages, daily series and breakdowns of `user_id`'s records in the range.
    async fn stats(&self, user_id: &str, query: &StatsQuery) -> Result<Stats, QueryError>;

    /// One page of `user_id`'s records, newest first.
    async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError>;
}

#[async_trait]
impl<T: ActivityQuery + ?Sized> ActivityQuery for Arc<T> {
    async fn stats(&self, user_id: &str, query: &StatsQuery) -> Result<Stats, QueryError> {
        (**self).stats(user_id, query).await
    }

    async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError> {
        (**self).log(user_id, query).await
    }
}
