//! [`SqlSink`]: the SQL backend named by a URL, for applications that let their operator
//! choose (`DATABASE_URL=postgres://…` or `sqlite://…`).

use async_trait::async_trait;

use super::sql::{StorageError, redact};
use super::{ActivitySink, SinkError};
use crate::query::{ActivityQuery, LogPage, LogQuery, QueryError, Stats, StatsQuery};
use crate::record::ActivityRecord;

/// A [`PostgresSink`](crate::sink::PostgresSink) or a [`SqliteSink`](crate::sink::SqliteSink), picked
/// from a URL's scheme by [`SqlSink::connect`]. It is a sink and answers the activity
/// queries, like either.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_activity::StorageError> {
/// use tower_activity::sink::SqlSink;
///
/// let url = std::env::var("ACTIVITY_DB").unwrap_or_else(|_| "sqlite::memory:".into());
/// let sink = SqlSink::connect(&url).await?;
/// assert!(matches!(sink, SqlSink::Sqlite(_)));
///
/// let err = SqlSink::connect("mysql://localhost/x").await.unwrap_err();
/// assert!(err.to_string().contains("mysql://localhost/x"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SqlSink {
    /// `postgres://…` or `postgresql://…`.
    #[cfg(feature = "postgres")]
    Postgres(crate::sink::PostgresSink),
    /// `sqlite:…`.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::sink::SqliteSink),
}

impl SqlSink {
    /// Connects to (and migrates) the database at `url`: `postgres://` / `postgresql://`
    /// (feature `postgres`) or `sqlite:` (feature `sqlite`), with the default table names.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(SqlSink::Postgres(
                crate::sink::PostgresSink::connect(url).await?,
            )),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(SqlSink::Sqlite(
                crate::sink::SqliteSink::connect(url).await?,
            )),
            _ => Err(StorageError::UnsupportedUrl {
                url: redact(url),
                reason: format!(
                    "this build accepts {}",
                    [
                        #[cfg(feature = "postgres")]
                        "postgres://",
                        #[cfg(feature = "sqlite")]
                        "sqlite:",
                    ]
                    .join(" and ")
                ),
            }),
        }
    }

    /// Closes the connection pool: see [`PostgresSink::close`](crate::sink::PostgresSink::close).
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "postgres")]
            SqlSink::Postgres(s) => s.close().await,
            #[cfg(feature = "sqlite")]
            SqlSink::Sqlite(s) => s.close().await,
        }
    }

    /// Retention: see [`PostgresSink::delete_older_than`](crate::sink::PostgresSink::delete_older_than).
    pub async fn delete_older_than(&self, days: u32) -> Result<u64, StorageError> {
        match self {
            #[cfg(feature = "postgres")]
            SqlSink::Postgres(s) => s.delete_older_than(days).await,
            #[cfg(feature = "sqlite")]
            SqlSink::Sqlite(s) => s.delete_older_than(days).await,
        }
    }
}

#[async_trait]
impl ActivitySink for SqlSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        match self {
            #[cfg(feature = "postgres")]
            SqlSink::Postgres(s) => s.write(records).await,
            #[cfg(feature = "sqlite")]
            SqlSink::Sqlite(s) => s.write(records).await,
        }
    }
}

#[async_trait]
impl ActivityQuery for SqlSink {
    async fn stats(&self, user_id: &str, query: &StatsQuery) -> Result<Stats, QueryError> {
        match self {
            #[cfg(feature = "postgres")]
            SqlSink::Postgres(s) => s.stats(user_id, query).await,
            #[cfg(feature = "sqlite")]
            SqlSink::Sqlite(s) => s.stats(user_id, query).await,
        }
    }

    async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError> {
        match self {
            #[cfg(feature = "postgres")]
            SqlSink::Postgres(s) => s.log(user_id, query).await,
            #[cfg(feature = "sqlite")]
            SqlSink::Sqlite(s) => s.log(user_id, query).await,
        }
    }
}
