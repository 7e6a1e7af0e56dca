//! [`PostgresSink`]: records in PostgreSQL (15 or newer), a daily rollup maintained in the
//! statement that inserts each batch, and the activity queries.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgPoolOptions, Postgres};

use crate::record::ActivityRecord;
use crate::sink::sql::{SqlStore, StorageError, TableNames, sql_sink_methods};
use crate::sink::{ActivitySink, SinkError};

mod backend;
mod write;

/// Connections opened by [`PostgresSink::connect`]: the writer uses one at a time, the
/// activity API the rest.
const MAX_CONNECTIONS: u32 = 8;

/// The sink's timeouts, for the current transaction only (`SET LOCAL`), so that a pool
/// shared with the application ([`PostgresSink::from_pool`]) keeps its own settings:
///
/// - `statement_timeout` 20 s: a batch insert or a stats or log query that runs longer is
///   cancelled (SQLSTATE 57014, transient: the writer retries the batch) instead of holding a
///   connection forever. Shorter than the writer's default `sink_timeout` (30 s), so the
///   database gives up first and the connection stays usable.
/// - `lock_timeout` 5 s: a statement waiting longer for a lock (a migration, someone's
///   `LOCK TABLE`) fails (SQLSTATE 55P03, transient).
pub(crate) const SET_TIMEOUTS: &str =
    "SET LOCAL statement_timeout = '20s'; SET LOCAL lock_timeout = '5s'";

/// An [`ActivitySink`] and [`ActivityQuery`](crate::query::ActivityQuery) over PostgreSQL 15 or newer (feature `postgres`).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), tower_activity::StorageError> {
/// use tower_activity::ActivityLayer;
/// use tower_activity::sink::PostgresSink;
///
/// let sink = PostgresSink::connect("postgres://app@localhost/app").await?; // migrates
/// let layer = ActivityLayer::new(sink.clone());
/// // … serve; the dashboard's API reads `sink.stats(…)` and `sink.log(…)`.
/// # drop(layer); Ok(()) }
/// ```
///
/// **Tables** ([`TableNames`]; migrations embedded, history in their own
/// `activity_migrations` table): `activity_log` has every record field as a column (`id UUID
/// PRIMARY KEY`, `cost_usd NUMERIC`, `metadata JSONB`, the error as `error_type` and
/// `error_message`, enums as their `TEXT` names), indexed on `(user_id, timestamp DESC, id
/// DESC)`, `timestamp`, and `(user_id, model | provider, timestamp DESC)`. `activity_daily`
/// holds, per user, UTC day, kind, model and provider, the requests, input/output/total tokens
/// and cost.
///
/// **Writes**: one statement per batch, whatever its size: the records arrive as one array per
/// column (`UNNEST`), are inserted with `ON CONFLICT (id) DO NOTHING`, and the rows actually
/// inserted are added to the rollup in the same statement — so a retried batch keeps one copy
/// of each record and counts it once. Lost connections, timeouts and deadlocks are
/// [`SinkError::Transient`]; data and constraint errors (SQLSTATE classes 22, 23, 54)
/// [`SinkError::Permanent`]. A NUL character, which PostgreSQL's `TEXT` and `JSONB` reject,
/// is stored as U+FFFD. Every write and query runs with `statement_timeout` 20 s and
/// `lock_timeout` 5 s, set for its own transaction only (`SET LOCAL`), so a shared pool keeps
/// its settings: a statement past them fails as a transient error the writer retries.
///
/// **Queries**: stats read the rollup only; the log pages by offset or keyset cursor with a
/// real `total`. Clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresSink {
    store: SqlStore<Postgres>,
    /// The batch insert of these table names, built once.
    insert: Arc<str>,
}

impl PostgresSink {
    /// Connects to `url` (a pool of up to 8 connections) and migrates, with the default
    /// [`TableNames`].
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, TableNames::new()).await
    }

    /// Like [`connect`](Self::connect), with other table names (a schema, a prefix).
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), tower_activity::StorageError> {
    /// use tower_activity::sink::{PostgresSink, TableNames};
    ///
    /// let names = TableNames::new().with_schema("activity")?.with_prefix("tenant_a_")?;
    /// let sink = PostgresSink::connect_with("postgres://app@localhost/app", names).await?;
    /// # let _ = sink; Ok(()) }
    /// ```
    pub async fn connect_with(url: &str, names: TableNames) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect(url)
            .await?;
        Self::from_pool(pool, names).await
    }

    /// Uses an existing pool (your application's) and migrates.
    pub async fn from_pool(pool: PgPool, names: TableNames) -> Result<Self, StorageError> {
        let insert = write::insert_statement(&names.log_table(), &names.daily_table());
        Ok(PostgresSink {
            store: SqlStore::new(pool, names).await?,
            insert: insert.into(),
        })
    }
}

#[async_trait]
impl ActivitySink for PostgresSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        write::write(self.store.pool(), &self.insert, records).await
    }
}

sql_sink_methods!(
    PostgresSink,
    PgPool,
    /// Applies the embedded migrations that the database lacks, under an advisory lock (so
    /// that several instances starting together migrate once); idempotent (the constructors
    /// call it).
);
