//! [`PostgresSink`]: records in PostgreSQL (15 or newer), a daily rollup maintained in the
//! statement that inserts each batch, and the activity queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgPoolOptions, Postgres};

use crate::record::ActivityRecord;
use crate::sink::sql::{SqlStore, StorageError, TableNames, sink_error, sql_sink_methods};
use crate::sink::{ActivitySink, SinkError};

mod backend;
mod copy;
mod numeric;
mod partition;
mod rollup;
mod write;

pub use self::partition::PartitionPeriod;
use self::partition::Partitions;

/// Connections opened by [`PostgresSink::connect`]: the writer uses one at a time, the
/// activity API the rest.
const MAX_CONNECTIONS: u32 = 8;

/// The default of [`PostgresSink::with_copy_threshold`]: batches of at least this many
/// records take the bulk path (`COPY` into the log); smaller ones the single `UNNEST`
/// statement, which costs fewer round trips. Measured in BENCHMARKS.md ("Storage").
pub const DEFAULT_COPY_THRESHOLD: usize = 500;

/// After a bulk batch met a stored record, this many of the next bulk-sized batches go
/// through `UNNEST` directly: duplicates come in runs (a replayed spool, a redelivered
/// backlog), and each would otherwise cost a `COPY` that is rolled back.
const UNNEST_AFTER_DUPLICATES: u32 = 8;

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

/// How many periods after the current one [`PostgresSink`] keeps partitions for by default.
pub const DEFAULT_PARTITIONS_AHEAD: u32 = 2;

/// Classifies a write's error: a row for which no partition exists (SQLSTATE 23514, "no
/// partition of relation … found for row": another process's retention dropped a partition
/// this one knew) is transient — the retry reads the catalog again and makes it; the rest as
/// every SQL sink does.
pub(super) fn write_error(error: sqlx::Error) -> SinkError {
    if let sqlx::Error::Database(e) = &error {
        if e.code().as_deref() == Some("23514") && e.message().starts_with("no partition of") {
            return SinkError::transient(format!("{NO_PARTITION}: {}", e.message()));
        }
    }
    sink_error::<Postgres>(error)
}

/// How [`write_error`] begins the message of a row without a partition.
const NO_PARTITION: &str = "no partition for a record's time";

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
/// `activity_migrations` table): `activity_log` has every record field as a column (`cost_usd
/// NUMERIC`, `metadata JSONB`, the error as `error_type` and `error_message`, enums as their
/// `TEXT` names), primary key `(id, timestamp)`, indexed on `(user_id, timestamp DESC, id
/// DESC)` (including kind, model, provider) and `timestamp` (BRIN). It is partitioned by
/// time, a partition per UTC month by default ([`with_partitions`](Self::with_partitions)),
/// made ahead by the sink; an older unpartitioned table is converted in place at connect
/// (migration 3: the old table becomes one partition, nothing is copied). `activity_daily`
/// holds, per user, UTC day, kind, model and provider, the requests, input/output/total tokens
/// and cost.
///
/// **Writes**: one transaction per batch, `synchronous_commit` as the server has it (on by
/// default: a batch the writer counts as written survives a crash). A batch of fewer than 500
/// records ([`with_copy_threshold`](Self::with_copy_threshold)) arrives as one array per
/// column (`UNNEST`), inserted with `ON CONFLICT (id, timestamp) DO NOTHING` by one statement
/// that adds the rows actually inserted to the rollup. A larger one is streamed with binary
/// `COPY` straight into the log and its rollup rows, added up by the sink, are upserted in
/// the same transaction; if a record of it is stored already (a retry, a replay) the `COPY`
/// fails, is rolled back, and the batch goes through the `UNNEST` statement instead. Either
/// way a retried batch keeps one copy of each record and counts it once. Lost connections,
/// timeouts and deadlocks are [`SinkError::Transient`]; data and constraint errors (SQLSTATE
/// classes 22, 23, 54) [`SinkError::Permanent`]. A NUL character, which PostgreSQL's `TEXT`
/// and `JSONB` reject, is stored as U+FFFD. Every write and query runs with
/// `statement_timeout` 20 s and `lock_timeout` 5 s, set for its own transaction only (`SET
/// LOCAL`), so a shared pool keeps its settings: a statement past them fails as a transient
/// error the writer retries.
///
/// **Queries**: stats read the rollup only; the log pages by offset or keyset cursor with a
/// real `total`. Clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresSink {
    store: SqlStore<Postgres>,
    /// The batch insert of these table names, built once.
    insert: Arc<str>,
    /// The bulk path's statements of these table names.
    bulk: Arc<copy::BulkStatements>,
    /// Batches of at least this many records take the bulk path.
    copy_threshold: usize,
    /// How many more bulk-sized batches go through `UNNEST` after duplicates, shared by
    /// clones ([`UNNEST_AFTER_DUPLICATES`]).
    unnest_next: Arc<AtomicU32>,
    /// The time partitions of the log, shared by clones.
    partitions: Arc<Partitions>,
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
        let (log, daily) = (names.log_table(), names.daily_table());
        Ok(PostgresSink {
            insert: write::insert_statement(&log, &daily).into(),
            bulk: Arc::new(copy::BulkStatements::new(&log, &daily)),
            partitions: Partitions::new(
                &names,
                PartitionPeriod::default(),
                DEFAULT_PARTITIONS_AHEAD,
            ),
            store: SqlStore::new(pool, names).await?,
            copy_threshold: DEFAULT_COPY_THRESHOLD,
            unnest_next: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Partitions `activity_log` by `period` (default [`PartitionPeriod::Month`]) and keeps
    /// partitions for the current period and `ahead` more (default
    /// [`DEFAULT_PARTITIONS_AHEAD`], 2).
    ///
    /// The sink makes partitions itself: before a batch whose time (or the time `ahead`)
    /// no partition holds yet — so, once a period, at the first write of the period before —
    /// and for any older record (a replayed spool, an ingester's backlog). A period that would
    /// overlap an existing partition (the legacy one of the in-place migration, days made
    /// while the period was `Day`) gets a day partition instead. Retention
    /// ([`delete_before`](Self::delete_before)) drops every partition that ends by its cutoff
    /// and deletes rows only in the one that reaches past it: with `Day`, nothing is deleted
    /// row by row. Call [`create_partitions`](Self::create_partitions) (e.g. from a daily
    /// job) to keep even the first write of a period from making one.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), tower_activity::StorageError> {
    /// use tower_activity::sink::{PartitionPeriod, PostgresSink};
    ///
    /// let sink = PostgresSink::connect("postgres://app@localhost/app")
    ///     .await?
    ///     .with_partitions(PartitionPeriod::Day, 7);
    /// sink.create_partitions().await?; // today and the next 7 days
    /// # Ok(()) }
    /// ```
    pub fn with_partitions(mut self, period: PartitionPeriod, ahead: u32) -> Self {
        self.partitions = Partitions::new(self.store.names(), period, ahead);
        self
    }

    /// Makes the partitions of the current period and the periods ahead that do not exist
    /// yet (see [`with_partitions`](Self::with_partitions)).
    pub async fn create_partitions(&self) -> Result<(), StorageError> {
        self.partitions
            .ensure(self.store.pool(), std::iter::empty())
            .await?;
        Ok(())
    }

    /// Batches of at least `records` records are streamed with binary `COPY` into the log
    /// (the bulk path); smaller ones are sent as one `UNNEST` statement. Default
    /// [`DEFAULT_COPY_THRESHOLD`] (500); `1` sends every batch through `COPY`, `usize::MAX`
    /// none. Both paths store the same rows and keep the rollup exact.
    pub fn with_copy_threshold(mut self, records: usize) -> Self {
        self.copy_threshold = records.max(1);
        self
    }

    /// Whether this bulk-sized batch goes through `UNNEST` because a recent one met
    /// duplicates; counts it.
    fn unnest_for_a_while(&self) -> bool {
        self.unnest_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[async_trait]
impl ActivitySink for PostgresSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        let pool = self.store.pool();
        self.partitions
            .ensure(pool, records.iter().map(|r| r.timestamp))
            .await
            .map_err(write_error)?;
        let written = if records.len() >= self.copy_threshold && !self.unnest_for_a_while() {
            match copy::write(pool, &self.bulk, records).await {
                Ok(copy::Bulk::Written) => Ok(()),
                Ok(undone) => {
                    if undone == copy::Bulk::Duplicates {
                        self.unnest_next
                            .store(UNNEST_AFTER_DUPLICATES, Ordering::Relaxed);
                    }
                    write::write(pool, &self.insert, records).await
                }
                Err(e) => Err(e),
            }
        } else {
            write::write(pool, &self.insert, records).await
        };
        if let Err(SinkError::Transient(e)) = &written {
            if e.to_string().starts_with(NO_PARTITION) {
                // Another process dropped a partition this one knew: read them again.
                self.partitions.forget();
            }
        }
        written
    }
}

sql_sink_methods!(
    PostgresSink,
    PgPool,
    /// Applies the embedded migrations that the database lacks, under an advisory lock (so
    /// that several instances starting together migrate once); idempotent (the constructors
    /// call it).
);
