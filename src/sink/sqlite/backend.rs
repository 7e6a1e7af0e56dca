//! SQLite's [`Backend`]: instants as microseconds, `BEGIN IMMEDIATE` around the migrations,
//! and SQLite's primary result codes.

use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteQueryResult};
use sqlx::{ConnectOptions, Connection, SqlitePool, Transaction};

use crate::sink::sql::{Backend, Dialect, Migration, TableNames};

impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;

    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            version: 1,
            description: "activity_log, activity_daily and their indexes",
            sql: include_str!("../../../migrations/sqlite/0001_activity_log.sql"),
        },
        Migration {
            version: 2,
            description: "service_tier, cost_source, cost_details, usage_details",
            sql: include_str!("../../../migrations/sqlite/0002_cost_details.sql"),
        },
    ];

    fn history_table(history: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {history} (version INTEGER PRIMARY KEY, \
             description TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
    }

    fn stats_statement(daily: &str) -> String {
        format!(
            "SELECT day, model, provider, requests, total_tokens, cost_usd FROM {daily} \
             WHERE user_id = ?1 AND day >= ?2 AND day <= ?3 AND (kind = 'request' OR ?4)"
        )
    }

    fn bind_instant<'q>(
        query: Query<'q, Sqlite, SqliteArguments<'q>>,
        instant: DateTime<Utc>,
    ) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        query.bind(instant.timestamp_micros())
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// `BEGIN IMMEDIATE` takes the write lock at once, so that two processes opening the same
    /// file migrate one after the other: a deferred transaction, having read the history
    /// first, could fail with `SQLITE_BUSY` on its first write instead of waiting.
    async fn begin_migrations(
        pool: &SqlitePool,
        _names: &TableNames,
    ) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// A read transaction sees one snapshot: the count and the page agree.
    async fn begin_snapshot(
        pool: &SqlitePool,
    ) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin().await
    }

    /// Folds the write-ahead log back into the file. SQLite does that when the last connection
    /// closes, but two connections closing at once can each see the other still open and
    /// both skip it (the pool closes a straggler while it closes the idle ones), leaving
    /// `-wal` and `-shm` behind: the data is safe, but the file is not self-contained. One
    /// connection, alone now, checkpoints and closes, which removes them.
    async fn after_close(pool: &SqlitePool) {
        let options = pool.connect_options();
        let file = options.get_filename();
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        if !std::path::Path::new(&wal).exists() {
            return;
        }
        let Ok(mut conn) = options.connect().await else {
            return;
        };
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
        {
            tracing::debug!(%error, "checkpoint after closing the pool");
        }
        let _ = conn.close().await;
    }

    /// Nothing: SQLite's table is not partitioned; retention deletes rows.
    async fn drop_before(
        _tx: &mut Transaction<'static, Sqlite>,
        _names: &TableNames,
        _cutoff: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        Ok(0)
    }

    /// SQLite's primary result codes that are the batch's fault: `SQLITE_TOOBIG` (18),
    /// `SQLITE_CONSTRAINT` (19), `SQLITE_MISMATCH` (20), `SQLITE_RANGE` (25). The rest (busy,
    /// locked, I/O, full disk …) is the store's state: transient.
    fn permanent_code(code: &str) -> bool {
        code.parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_errors_are_permanent_and_busy_is_transient() {
        assert!(Sqlite::permanent_code("19"));
        assert!(Sqlite::permanent_code("1811"), "SQLITE_CONSTRAINT_TRIGGER");
        assert!(Sqlite::permanent_code("2067"), "SQLITE_CONSTRAINT_UNIQUE");
        assert!(!Sqlite::permanent_code("5"), "SQLITE_BUSY");
        assert!(!Sqlite::permanent_code("6"), "SQLITE_LOCKED");
        assert!(!Sqlite::permanent_code("10"), "SQLITE_IOERR");
    }
}
