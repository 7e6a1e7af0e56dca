//! What the SQL sinks share: table names, the error type, the embedded migrations, the column
//! list, encoding a record into column values and decoding a row back, and the log query.
//!
//! Each backend ([`PostgresSink`](crate::PostgresSink), [`SqliteSink`](crate::SqliteSink))
//! lives in its own directory and keeps only what its database does differently: the batch
//! insert, the rollup update, the placeholders and the error codes.

use std::error::Error;

use crate::sink::SinkError;

mod encode;
mod log;
mod migration;
mod names;
mod row;

pub(crate) use self::encode::EncodedRecord;
pub(crate) use self::log::{Bind, LogSql, LogTables, log_page};
pub(crate) use self::migration::{Migration, render};
pub use self::names::TableNames;
#[cfg(feature = "sqlite")]
pub(crate) use self::row::decimal;
pub(crate) use self::row::{
    Dialect, columns, decode_record, retention_cutoff, start_of, stats_from_rows,
};

/// Why a SQL sink could not be built, migrated or maintained.
///
/// Writes report [`SinkError`] (what the writer needs to know: retry or not) and queries
/// [`QueryError`](crate::QueryError); this is for everything else.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A schema name or table prefix is not a plain SQL identifier. Names are validated
    /// because they are written into SQL, not bound as parameters.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// Which name: `schema` or `table prefix`.
        what: &'static str,
        /// The name given.
        name: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// The URL names no backend this build supports; the message says which are compiled in.
    #[error("unsupported database URL {url:?}: {reason}")]
    UnsupportedUrl {
        /// The URL given, without its password.
        url: String,
        /// What is accepted.
        reason: String,
    },
    /// An argument is out of range; the message names it.
    #[error("invalid argument `{parameter}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        parameter: &'static str,
        /// What is accepted.
        reason: &'static str,
    },
    /// An embedded migration failed; nothing of it was applied (each runs in a transaction).
    #[error("activity migration {version} ({description}) failed: {source}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// What it does.
        description: &'static str,
        /// The database's answer.
        #[source]
        source: sqlx::Error,
    },
    /// The database failed (connection refused, permission denied …).
    #[error("activity store: {0}")]
    Database(#[from] sqlx::Error),
}

/// Classifies a database error for the [`ActivityWriter`](crate::ActivityWriter):
/// `permanent_code` says which of the backend's error codes are the batch's fault (a
/// constraint, a value the store rejects); everything that is the store's state (a lost
/// connection, a timeout, a lock, a full disk) is transient, as the sink contract asks.
pub(crate) fn sink_error(error: sqlx::Error, permanent_code: fn(&str) -> bool) -> SinkError {
    let permanent = match &error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| permanent_code(&code)),
        // The batch's values, or a mismatch between this code and the schema: retrying the
        // same batch cannot help.
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    };
    if permanent {
        SinkError::permanent(error)
    } else {
        SinkError::transient(error)
    }
}

/// A row that does not decode into a record (a value this version does not know).
pub(crate) type DecodeError = Box<dyn Error + Send + Sync>;

/// A URL for error messages: the password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact("sqlite://activity.db"), "sqlite://activity.db");
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
    }
}
