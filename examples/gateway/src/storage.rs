//! [`Storage`]: the activity sink, its queries and the account store, chosen by
//! `DATABASE_URL` at startup and kept in one database.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use tower_activity::ActivitySink;
use tower_activity::budget::{BudgetStore, PostgresBudgetStore};
use tower_activity::query::ActivityQuery;
use tower_activity::sink::{MemorySink, NoopSink, PostgresSink, SqlSink, SqliteSink, TableNames};

use crate::budget::ledger::SqliteLedger;
use crate::store::{
    AccountStore, CachedAccounts, MemoryAccounts, PostgresAccounts, SqliteAccounts,
};

/// How long startup waits for PostgreSQL before it gives up with a message.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL connections: the writer's batches, the activity API, the account lookups.
pub const PG_CONNECTIONS: u32 = 8;
/// PostgreSQL connections of the budget store (admissions and settlements).
pub const PG_BUDGET_CONNECTIONS: u32 = 6;

/// Turns SQLite's memory statistics off for the whole process (`SQLITE_CONFIG_MEMSTATUS`,
/// one of the options SQLite's documentation recommends for speed): with them on, each of
/// SQLite's allocations — about thirty per stored record, the copies of its bound text —
/// takes a process-wide mutex to keep a count the gateway never reads (the lock and unlock
/// calls alone ≈ 2.5k instructions per stored record, BENCHMARKS.md). `sqlite3_memory_used`
/// and the soft heap limit then read 0.
///
/// Only a binary may call it, first: SQLite takes its configuration before its first
/// connection (`sqlite3_initialize`), for the process. `Err` is SQLite's result code when it
/// was too late (`SQLITE_MISUSE`, 21): nothing changed, and nothing else is wrong.
pub fn sqlite_memory_statistics_off() -> Result<(), i32> {
    // SAFETY: `sqlite3_config` is safe to call at any time from a single thread: before
    // initialization it sets the option, after it returns SQLITE_MISUSE and changes
    // nothing. The gateway calls it first thing in `main`, before any other thread exists.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
            0 as std::ffi::c_int,
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// Where everything the gateway keeps goes.
#[derive(Clone)]
pub struct Storage {
    /// What the activity writer writes to.
    pub sink: Arc<dyn ActivitySink>,
    /// What `/user/activity/*` reads from (the same records).
    pub activity: Arc<dyn ActivityQuery>,
    /// Users and chat sessions.
    pub accounts: Arc<dyn AccountStore>,
    /// Credits, limits and spend counters ([`budget`](crate::budget): PostgreSQL's tables,
    /// or in this process — SQLite persisting grants and limits — or Redis when
    /// `BUDGET_STORE` replaces it).
    pub budget: Arc<dyn BudgetStore>,
    /// For the startup log: which store, without credentials.
    pub description: String,
    /// The SQL store (its pool is the account store's too), closed by [`Storage::close`].
    sql: Option<SqlSink>,
    /// The PostgreSQL budget store's own pool, closed by [`Storage::close`].
    budget_pool: Option<sqlx::PgPool>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Everything in memory: nothing survives the process.
    pub fn memory() -> Self {
        let sink = Arc::new(MemorySink::new());
        Storage {
            sink: sink.clone(),
            activity: sink,
            accounts: Arc::new(MemoryAccounts::default()),
            budget: crate::budget::memory_store(),
            budget_pool: None,
            description: "memory (nothing is kept after exit)".to_owned(),
            sql: None,
        }
    }

    /// Activity discarded ([`NoopSink`]), accounts in memory: what the load test uses to
    /// measure the layer without storage.
    pub fn noop() -> Self {
        Storage {
            sink: Arc::new(NoopSink),
            activity: Arc::new(MemorySink::new()),
            description: "noop (activity discarded, accounts in memory)".to_owned(),
            ..Storage::memory()
        }
    }

    /// Opens (and migrates) the store `database_url` names: `sqlite://FILE` (created if
    /// missing), `postgres://…`, `memory:`, or `noop:`. `Err` is a one-line cause with a hint.
    pub async fn open(database_url: &str) -> Result<Self, String> {
        Storage::open_with(database_url, &crate::budget::BudgetConfig::default()).await
    }

    /// [`open`](Self::open), with the budget store's settings (its call timeout).
    pub async fn open_with(
        database_url: &str,
        budget_config: &crate::budget::BudgetConfig,
    ) -> Result<Self, String> {
        let shown = redact(database_url);
        let cannot = |e: &dyn std::fmt::Display, hint: &str| {
            format!("cannot open DATABASE_URL={shown}: {e}; {hint}")
        };
        let storage = match database_url.split_once(':').map(|(scheme, _)| scheme) {
            Some("memory") => Storage::memory(),
            Some("noop") => Storage::noop(),
            Some("sqlite") => {
                let sink = SqliteSink::connect(database_url).await.map_err(|e| {
                    cannot(&e, "check that the file's directory exists and is writable")
                })?;
                let budget = SqliteLedger::open(
                    sink.pool().clone(),
                    &TableNames::new().log_table(),
                    chrono::Utc::now(),
                )
                .await
                .map_err(|e| cannot(&e, "the budget table could not be read or created"))?;
                Storage {
                    budget,
                    budget_pool: None,
                    sql: Some(SqlSink::Sqlite(sink.clone())),
                    accounts: Arc::new(CachedAccounts::new(Arc::new(SqliteAccounts::new(
                        sink.pool().clone(),
                    )))),
                    description: format!("SQLite ({shown})"),
                    sink: Arc::new(sink.clone()),
                    activity: Arc::new(sink),
                }
            }
            Some("postgres" | "postgresql") => {
                let hint = "is PostgreSQL running, and does the database exist?";
                // sqlx would retry an unreachable server for 30 s: fail fast at startup.
                let pool = PgPoolOptions::new()
                    .max_connections(PG_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect(database_url)
                    .await
                    .map_err(|e| cannot(&e, hint))?;
                let sink = PostgresSink::from_pool(pool, TableNames::new())
                    .await
                    .map_err(|e| cannot(&e, hint))?;
                // A pool of its own: admissions queue on a user's counter rows, and must not
                // wait behind the writer's batches for a connection (nor the batches behind
                // them); it waits for a connection as long as a budget call may take.
                let budget_pool = PgPoolOptions::new()
                    .max_connections(PG_BUDGET_CONNECTIONS)
                    .acquire_timeout(budget_config.timeout.max(CONNECT_TIMEOUT))
                    .connect(database_url)
                    .await
                    .map_err(|e| cannot(&e, hint))?;
                let budget = PostgresBudgetStore::from_pool(budget_pool.clone(), TableNames::new())
                    .await
                    .map_err(|e| cannot(&e, "the budget tables could not be created"))?
                    .with_timeout(budget_config.timeout);
                Storage {
                    budget: Arc::new(budget),
                    budget_pool: Some(budget_pool),
                    sql: Some(SqlSink::Postgres(sink.clone())),
                    accounts: Arc::new(CachedAccounts::new(Arc::new(PostgresAccounts::new(
                        sink.pool().clone(),
                    )))),
                    description: format!("PostgreSQL ({shown})"),
                    sink: Arc::new(sink.clone()),
                    activity: Arc::new(sink),
                }
            }
            _ => {
                return Err(format!(
                    "DATABASE_URL={shown} is not supported: use sqlite://FILE, postgres://…, memory: or noop:"
                ));
            }
        };
        storage
            .accounts
            .migrate()
            .await
            .map_err(|e| cannot(&e, "the account tables could not be created"))?;
        Ok(storage)
    }
}

impl Storage {
    /// Closes the database connections once the writer is done (SQLite then folds its
    /// write-ahead log back into the file and removes `-wal`/`-shm`).
    pub async fn close(&self) {
        if let Some(sql) = &self.sql {
            sql.close().await;
        }
        if let Some(pool) = &self.budget_pool {
            pool.close().await;
        }
    }
}

/// `database_url` without its password, for logs and messages.
pub fn redact(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => database_url.to_owned(),
    }
}
