//! [`Backend`]: what PostgreSQL and SQLite really do differently when they migrate, query and
//! delete, so that [`SqlStore`](super::SqlStore) can do all of it once. The write paths are
//! not here: a batch insert (`UNNEST` arrays or one insert a record) differs in more than a
//! few details, and each backend keeps its own in its `write.rs`.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::{Database, Pool, Transaction};

use super::{Dialect, Migration, TableNames};
use crate::sink::SinkError;

/// A sqlx database the SQL sinks can store records in, implemented on `sqlx::Postgres` and
/// `sqlx::Sqlite` themselves so that the pool, the transaction and the row types come with it.
pub(crate) trait Backend: Database {
    /// Its placeholders and the select list of a record.
    const DIALECT: Dialect;

    /// Its migrations, oldest first. Never edit a released one: add a new version.
    const MIGRATIONS: &'static [Migration];

    /// `CREATE TABLE IF NOT EXISTS` for the migration history table `history`
    /// (`version, description, applied_at`).
    fn history_table(history: &str) -> String;

    /// The stats query on the rollup `daily`: `day, model, provider, requests, tokens, cost`
    /// (the day and the cost as text) of user `$1` from day `$2` to day `$3`, events too when
    /// `$4`.
    fn stats_statement(daily: &str) -> String;

    /// Binds an instant in the `timestamp` column's type.
    fn bind_instant<'q>(
        query: Query<'q, Self, Self::Arguments<'q>>,
        instant: DateTime<Utc>,
    ) -> Query<'q, Self, Self::Arguments<'q>>;

    /// How many rows a statement changed (sqlx gives each backend its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Opens the transaction the migrations run in, holding whatever lock keeps two processes
    /// that start together from migrating at once.
    fn begin_migrations(
        pool: &Pool<Self>,
        names: &TableNames,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// Opens a read transaction whose statements all see one snapshot, so that a log page and
    /// its `total` agree while the writer inserts.
    fn begin_snapshot(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// Runs once every pooled connection is closed: what the database needs to be left
    /// clean.
    fn after_close(pool: &Pool<Self>) -> impl Future<Output = ()> + Send;

    /// Retention's first step, in its transaction: drops the storage of whole periods before
    /// `cutoff` at once (PostgreSQL's time partitions) and returns how many records they held;
    /// the rows left before `cutoff` are then deleted one by one. SQLite has no partitions.
    fn drop_before<'a>(
        tx: &'a mut Transaction<'static, Self>,
        names: &'a TableNames,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;

    /// Whether a database error code is the batch's fault (a constraint, a value the store
    /// rejects) rather than the store's state.
    fn permanent_code(code: &str) -> bool;
}

/// Classifies a database error for the [`ActivityWriter`](crate::ActivityWriter): the codes
/// [`Backend::permanent_code`] names are the batch's fault; everything that is the store's
/// state (a lost connection, a timeout, a lock, a full disk) is transient, as the sink contract
/// asks.
pub(crate) fn sink_error<DB: Backend>(error: sqlx::Error) -> SinkError {
    let permanent = match &error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| DB::permanent_code(&code)),
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
