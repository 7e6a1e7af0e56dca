//! [`SqliteSink`]: records in a SQLite file (or in memory), with the same schema and queries
//! as [`PostgresSink`](crate::sink::PostgresSink). The embedded default of the example gateway.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::record::ActivityRecord;
use crate::record::{CostSource, FinishReason, LlmApi, Outcome, UsageSource};
use crate::sink::sql::{
    APIS, COLUMNS, COST_SOURCES, FINISH_REASONS, KINDS, OUTCOMES, SqlStore, StorageError,
    TableNames, USAGE_SOURCES, columns, kind_name, sql_sink_methods,
};
use crate::sink::{ActivitySink, SinkError};

mod backend;
mod write;

/// Connections of a file database: one writer at a time (SQLite's rule) and readers beside
/// it, thanks to WAL.
const MAX_CONNECTIONS: u32 = 4;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An [`ActivitySink`] and [`ActivityQuery`](crate::query::ActivityQuery) over SQLite (feature `sqlite`; libsqlite3 is
/// bundled, nothing to install).
///
/// One call opens (creating the file if missing, in WAL mode) and migrates:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_activity::{ActivityLayer, ActivityRecord, ActivitySink, RecordKind};
/// use tower_activity::query::{ActivityQuery, LogQuery};
/// use tower_activity::sink::SqliteSink;
///
/// # let dir = std::env::temp_dir().join(format!("tower-activity-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite://{}", dir.join("activity.db").display());
/// # /*
/// let sink = SqliteSink::connect("sqlite://activity.db").await?;
/// # */
/// # let sink = SqliteSink::connect(&url).await?;
/// let layer = ActivityLayer::new(sink.clone()); // what a server does
/// # drop(layer);
///
/// let mut record = ActivityRecord::new(RecordKind::Request);
/// record.user_id = Some("alice".into());
/// sink.write(&[record]).await?;
/// assert_eq!(sink.log("alice", &LogQuery::default()).await?.total, 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
///
/// The tables are those of [`TableNames`]: every record field is a column (`cost_usd` as
/// exact decimal text, since SQLite has no exact decimal type; `timestamp` as microseconds;
/// `metadata` as JSON text), and a daily rollup per user, day, kind, model and provider is
/// updated in the transaction of each batch — its money summed in Rust, exactly, never through
/// a float. Writes are idempotent on `id`. Clones share the connection pool.
#[derive(Debug, Clone)]
pub struct SqliteSink {
    store: SqlStore<Sqlite>,
    sql: Arc<Sql>,
}

/// The most records one `INSERT` statement carries. A batch is inserted in statements of
/// [`INSERT_ROWS`] records, then of the powers of two below it for the rest (at most eight
/// distinct statements, each prepared once per connection): one round trip to the
/// connection's thread per statement instead of one per record. 64 rows are 2,176 bound
/// values, far below SQLite's limit of 32,766.
pub(crate) const INSERT_ROWS: usize = 64;

/// The write statements of one set of table names, built once.
#[derive(Debug)]
struct Sql {
    /// `insert[k]` inserts `2^k` records (up to [`INSERT_ROWS`]), skipping those whose id is
    /// stored (`ON CONFLICT (id) DO NOTHING`).
    insert: Vec<String>,
    /// The same, returning the ids of the rows it inserted (`RETURNING id`).
    insert_returning: Vec<String>,
    rollup_get: String,
    rollup_update: String,
    rollup_insert: String,
}

impl Sql {
    fn new(names: &TableNames) -> Self {
        let (log, daily) = (names.log_table(), names.daily_table());
        let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
        // `WHERE true`: an upsert after `SELECT … FROM` must not parse as a join's `ON`.
        let insert: Vec<String> = (0..=INSERT_ROWS.trailing_zeros())
            .map(|k| {
                format!(
                    "INSERT INTO {log} ({}) SELECT {} FROM (VALUES {}) WHERE true \
                     ON CONFLICT (id) DO NOTHING",
                    columns(None),
                    select_list(),
                    vec![row.as_str(); 1 << k].join(", ")
                )
            })
            .collect();
        Sql {
            insert_returning: insert.iter().map(|s| format!("{s} RETURNING id")).collect(),
            insert,
            rollup_get: format!(
                "SELECT rowid, requests, input_tokens, output_tokens, total_tokens, cost_usd \
                 FROM {daily} WHERE user_id IS ?1 AND day = ?2 AND kind = ?3 \
                 AND model IS ?4 AND provider IS ?5"
            ),
            rollup_update: format!(
                "UPDATE {daily} SET requests = ?2, input_tokens = ?3, output_tokens = ?4, \
                 total_tokens = ?5, cost_usd = ?6 WHERE rowid = ?1"
            ),
            rollup_insert: format!(
                "INSERT INTO {daily} (user_id, day, kind, model, provider, requests, \
                 input_tokens, output_tokens, total_tokens, cost_usd) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
        }
    }
}

/// What the insert selects from its rows of placeholders (`column1` … `column34` of
/// `VALUES`): each column's value, except that an enum column's value is bound as the position
/// of its name in the enum's list (`sql/row.rs`) and turned back into the name here
/// (`CASE column2 WHEN 0 THEN 'request' WHEN 1 THEN 'event' END`): sqlx and then SQLite copy
/// every bound text (and free both copies), an integer is not copied — six texts a record
/// fewer. Once in the select list, not in each row: SQLite compares every constant of a
/// statement with those before it, and the `CASE`s of 64 rows made preparing one insert cost
/// 20 million instructions.
fn select_list() -> String {
    COLUMNS
        .iter()
        .enumerate()
        .map(|(i, &column)| {
            let value = format!("column{}", i + 1);
            match column {
                "kind" => case(&value, &KINDS, kind_name),
                "api" => case(&value, &APIS, LlmApi::as_str),
                "outcome" => case(&value, &OUTCOMES, Outcome::as_str),
                "finish_reason" => case(&value, &FINISH_REASONS, FinishReason::as_str),
                "usage_source" => case(&value, &USAGE_SOURCES, UsageSource::as_str),
                "cost_source" => case(&value, &COST_SOURCES, CostSource::as_str),
                _ => value,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CASE ? WHEN 0 THEN 'first' WHEN 1 THEN 'second' … END` for the names of `all` (NULL for
/// NULL).
fn case<T: Copy>(value: &str, all: &[T], name: fn(T) -> &'static str) -> String {
    let whens: String = all
        .iter()
        .enumerate()
        .map(|(i, &v)| format!(" WHEN {i} THEN '{}'", name(v)))
        .collect();
    format!("CASE {value}{whens} END")
}

/// What an enum column binds for the name `value`: its position in `all` (see [`select_list`]).
pub(crate) fn position<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    value: &str,
) -> Result<i64, String> {
    all.iter()
        .position(|&v| name(v) == value)
        .map(|i| i as i64)
        .ok_or_else(|| format!("{value:?} is not in its column's list of names"))
}

impl SqliteSink {
    /// Opens the database at `url` and migrates it: `sqlite://activity.db` (a file, created
    /// if missing), `sqlite://activity.db?mode=ro`… (any option `sqlx` accepts), or
    /// `sqlite::memory:` (see [`in_memory`](Self::in_memory)). Default [`TableNames`].
    ///
    /// File databases use WAL (readers never wait for the writer), `synchronous = NORMAL`
    /// (durable across a process crash; the last transactions may be lost on a power cut) and
    /// wait up to 5 s for a lock held by another connection.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, TableNames::new()).await
    }

    /// Like [`connect`](Self::connect), with other table names (a prefix; SQLite has no
    /// schemas).
    pub async fn connect_with(url: &str, names: TableNames) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = if url.contains(":memory:") || url.contains("mode=memory") {
            // Each connection to an in-memory database sees its own (or, shared, suffers table
            // locks): one connection, never closed, holds it.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        }
        // sqlx pings every connection handed back to the pool (a round trip to the
        // connection's thread) and drops one that does not answer. Pinging it again when it
        // is taken out cost each batch another round trip (two thread wake-ups) and could
        // find nothing new: a SQLite connection is a thread of this process, with no network
        // to lose while it sits in the pool.
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
        Self::from_pool(pool, names).await
    }

    /// A private in-memory database (tests, demos): gone when the last clone is dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sink = tower_activity::sink::SqliteSink::in_memory().await.unwrap();
    /// # let _ = sink;
    /// # }
    /// ```
    pub async fn in_memory() -> Result<Self, StorageError> {
        Self::connect("sqlite::memory:").await
    }

    /// Uses an existing pool and migrates its database. `names` must not have a schema.
    pub async fn from_pool(pool: SqlitePool, names: TableNames) -> Result<Self, StorageError> {
        if let Some(schema) = names.schema() {
            return Err(StorageError::InvalidName {
                what: "schema",
                name: schema.to_owned(),
                reason: "SQLite has no schemas; use a table prefix",
            });
        }
        let sql = Arc::new(Sql::new(&names));
        Ok(SqliteSink {
            store: SqlStore::new(pool, names).await?,
            sql,
        })
    }
}

#[async_trait]
impl ActivitySink for SqliteSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        write::write(self.store.pool(), &self.sql, records).await
    }
}

sql_sink_methods!(
    SqliteSink,
    SqlitePool,
    /// Applies the embedded migrations that this database lacks; idempotent (the
    /// constructors call it). The history is in `{prefix}activity_migrations`.
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection is not pinged when it is taken from the pool (sqlx pinged it when it was
    /// handed back), in a file database as in memory.
    #[tokio::test]
    async fn connections_are_not_pinged_when_taken_from_the_pool() {
        let dir = std::env::temp_dir().join(format!("tower-activity-ping-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("a.db").display());
        for sink in [
            SqliteSink::connect(&url).await.unwrap(),
            SqliteSink::in_memory().await.unwrap(),
        ] {
            assert!(!sink.pool().options().get_test_before_acquire());
            sink.close().await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
