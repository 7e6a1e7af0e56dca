//! What the SQL sinks share: table names, the error type, the column list, encoding a record
//! into column values and decoding a row back, and [`SqlStore`], which migrates, answers the
//! stats and log queries and deletes old days for both.
//!
//! Each backend ([`PostgresSink`](crate::sink::PostgresSink), [`SqliteSink`](crate::sink::SqliteSink))
//! lives in its own directory and keeps only what its database does differently: its
//! [`Backend`] (placeholders, timestamps, transactions, locks, error codes, migrations) and
//! its batch insert with the rollup update.

use std::error::Error;

mod backend;
mod encode;
mod log;
mod migration;
mod names;
mod public;
mod row;
mod store;

pub(crate) use self::backend::{Backend, sink_error};
pub(crate) use self::encode::EncodedRecord;
pub(crate) use self::migration::Migration;
pub use self::names::TableNames;
pub(crate) use self::public::sql_sink_methods;
#[cfg(feature = "sqlite")]
pub(crate) use self::row::decimal;
#[cfg(feature = "sqlite")]
pub(crate) use self::row::{
    APIS, COST_SOURCES, FINISH_REASONS, KINDS, OUTCOMES, USAGE_SOURCES, kind_name,
};
pub(crate) use self::row::{COLUMNS, Dialect, columns};
pub(crate) use self::store::SqlStore;

/// Why a SQL sink could not be built, migrated or maintained.
///
/// Writes report [`SinkError`](crate::SinkError) (what the writer needs to know: retry or
/// not) and queries [`QueryError`](crate::QueryError); this is for everything else.
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
