//! [`PostgresSink`]: records in PostgreSQL (15 or newer), a daily rollup maintained in the
//! statement that inserts each batch, and the activity queries.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::record::ActivityRecord;
use crate::sink::sql::{Dialect, StorageError, TableNames, columns, retention_cutoff, start_of};
use crate::sink::{ActivitySink, SinkError};

mod migrate;
mod query;
mod write;

/// Connections opened by [`PostgresSink::connect`]: the writer uses one at a time, the
/// activity API the rest.
const MAX_CONNECTIONS: u32 = 8;

/// An [`ActivitySink`] and [`ActivityQuery`](crate::ActivityQuery) over PostgreSQL 15 or newer
/// (feature `postgres`).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), tower_activity::StorageError> {
/// use tower_activity::{ActivityLayer, PostgresSink};
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
/// is stored as U+FFFD.
///
/// **Queries**: stats read the rollup only; the log pages by offset or keyset cursor with a
/// real `total`. Clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresSink {
    pool: PgPool,
    sql: Arc<Sql>,
}

/// The statements of one set of table names, built once.
#[derive(Debug)]
struct Sql {
    log: String,
    daily: String,
    select_list: String,
    insert: String,
    stats: String,
    delete_log: String,
    delete_daily: String,
    names: TableNames,
}

impl Sql {
    fn new(names: TableNames) -> Self {
        let (log, daily) = (names.log_table(), names.daily_table());
        Sql {
            insert: write::insert_statement(&log, &daily),
            stats: format!(
                "SELECT day::text, model, provider, sum(requests)::int8, \
                 sum(total_tokens)::int8, sum(cost_usd)::text FROM {daily} \
                 WHERE user_id = $1 AND day BETWEEN $2::date AND $3::date \
                 AND (kind = 'request' OR $4) GROUP BY day, model, provider"
            ),
            delete_log: format!("DELETE FROM {log} WHERE timestamp < $1"),
            delete_daily: format!("DELETE FROM {daily} WHERE day < $1::date"),
            select_list: columns(Some(Dialect::Postgres)),
            log,
            daily,
            names,
        }
    }
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
    /// use tower_activity::{PostgresSink, TableNames};
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
        let sink = PostgresSink {
            pool,
            sql: Arc::new(Sql::new(names)),
        };
        sink.migrate().await?;
        Ok(sink)
    }

    /// Applies the embedded migrations that the database lacks, under an advisory lock (so
    /// that several instances starting together migrate once); idempotent (the constructors
    /// call it).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        migrate::run(&self.pool, &self.sql.names).await
    }

    /// The connection pool (for your own queries on the same database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table names.
    pub fn names(&self) -> &TableNames {
        &self.sql.names
    }

    /// Retention: deletes the records of every UTC day before the last `days` (today and the
    /// `days − 1` days before are kept), with their rollup rows, in one transaction; returns
    /// how many records were deleted.
    ///
    /// Whole days go, so the rollup keeps matching the records: the stats of any range within
    /// the kept days do not change, and older days read as empty. `days` must be at least 1.
    ///
    /// ```no_run
    /// # async fn f(sink: tower_activity::PostgresSink) -> Result<(), tower_activity::StorageError> {
    /// let deleted = sink.delete_older_than(90).await?; // e.g. nightly
    /// # let _ = deleted; Ok(()) }
    /// ```
    pub async fn delete_older_than(&self, days: u32) -> Result<u64, StorageError> {
        self.delete_before(retention_cutoff(days, Utc::now().date_naive())?)
            .await
    }

    /// Deletes the records of every UTC day before `day`, with their rollup rows, in one
    /// transaction; returns how many records were deleted.
    pub async fn delete_before(&self, day: NaiveDate) -> Result<u64, StorageError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(&self.sql.delete_log)
            .bind(start_of(day))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(&self.sql.delete_daily)
            .bind(day.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

#[async_trait]
impl ActivitySink for PostgresSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        write::write(&self.pool, &self.sql.insert, records).await
    }
}
