//! [`SqlStore`]: what both SQL sinks do the same way, written once over [`Backend`]: the
//! migration runner, the stats and log queries, and retention.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use uuid::Uuid;

use super::log::{Bind, LogSql, LogTables, log_page};
use super::migration::render;
use super::row::{columns, decode_record, retention_cutoff, start_of, stats_from_rows};
use super::{Backend, StorageError, TableNames};
use crate::query::{LogPage, LogQuery, QueryError, Stats, StatsQuery};

/// The statements of one set of table names, built once.
#[derive(Debug)]
struct Statements {
    names: TableNames,
    log: String,
    daily: String,
    select_list: String,
    stats: String,
    delete_log: String,
    delete_daily: String,
}

/// A SQL sink's connection pool and the statements of its table names. Clones share both.
#[derive(Debug)]
pub(crate) struct SqlStore<DB: Backend> {
    pool: Pool<DB>,
    sql: Arc<Statements>,
}

// By hand: a derive would ask `DB: Clone`, which sqlx's database types are not.
impl<DB: Backend> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            sql: Arc::clone(&self.sql),
        }
    }
}

// What the shared code asks of sqlx for a backend: its connections execute statements, and
// it stores and reads the value types of the record's columns. Both backends have all of it;
// it is spelled out because sqlx's `Database` does not promise it.
impl<DB: Backend> SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> String: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> i32: Decode<'a, DB> + Type<DB>,
    for<'a> f64: Decode<'a, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// The store of `pool` with the tables `names`, migrated.
    pub(crate) async fn new(pool: Pool<DB>, names: TableNames) -> Result<Self, StorageError> {
        let (log, daily) = (names.log_table(), names.daily_table());
        let (instant, day) = (DB::DIALECT.placeholder(1), DB::DIALECT.day_placeholder(1));
        let sql = Statements {
            select_list: columns(Some(DB::DIALECT)),
            stats: DB::stats_statement(&daily),
            delete_log: format!("DELETE FROM {log} WHERE timestamp < {instant}"),
            delete_daily: format!("DELETE FROM {daily} WHERE day < {day}"),
            log,
            daily,
            names,
        };
        let store = SqlStore {
            pool,
            sql: Arc::new(sql),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The connection pool.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Closes the pool; when this returns, every connection is closed (a SQLite file in WAL
    /// mode has folded its log back and removed `-wal`/`-shm`). sqlx's `Pool::close` alone can
    /// return with one still open: a connection is handed back to the pool from a spawned task,
    /// which can put it in the idle queue after `close` swept it for the last time
    /// (launchbadge/sqlx#3217). Closing again sweeps it; a connection still in use is waited
    /// for, as `Pool::close` does. Then the backend's [`after_close`](Backend::after_close).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
        while self.pool.size() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            self.pool.close().await;
        }
        DB::after_close(&self.pool).await;
    }

    /// The table names.
    pub(crate) fn names(&self) -> &TableNames {
        &self.sql.names
    }

    /// Applies the migrations this database lacks, all in one transaction under the backend's
    /// migration lock, so that a failed one leaves nothing behind and two processes starting
    /// together migrate once.
    pub(crate) async fn migrate(&self) -> Result<(), StorageError> {
        let names = &self.sql.names;
        let history = names.migrations_table();
        let mut tx = DB::begin_migrations(&self.pool, names).await?;
        sqlx::raw_sql(&DB::history_table(&history))
            .execute(&mut *tx)
            .await?;
        let applied: Vec<i64> = sqlx::query_scalar(&format!("SELECT version FROM {history}"))
            .fetch_all(&mut *tx)
            .await?;
        let record = format!(
            "INSERT INTO {history} (version, description) VALUES ({}, {})",
            DB::DIALECT.placeholder(1),
            DB::DIALECT.placeholder(2)
        );
        for m in DB::MIGRATIONS
            .iter()
            .filter(|m| !applied.contains(&m.version))
        {
            let failed = |source| StorageError::Migration {
                version: m.version,
                description: m.description,
                source,
            };
            sqlx::raw_sql(&render(m.sql, names))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query(&record)
                .bind(m.version)
                .bind(m.description)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stats of `user_id`, from the daily rollup only.
    pub(crate) async fn stats(
        &self,
        user_id: &str,
        query: &StatsQuery,
    ) -> Result<Stats, QueryError> {
        let (from, to) = query.dates(Utc::now().date_naive());
        let rows = sqlx::query(&self.sql.stats)
            .bind(user_id)
            .bind(from.to_string())
            .bind(to.to_string())
            .bind(query.include_events)
            .fetch_all(&self.pool)
            .await
            .map_err(QueryError::storage)?;
        stats_from_rows(from, to, &rows)
    }

    /// A page of `user_id`'s log and the real count of the rows its filters match.
    pub(crate) async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError> {
        let tables = LogTables {
            log: &self.sql.log,
            daily: &self.sql.daily,
            select_list: &self.sql.select_list,
        };
        let sql = LogSql::new(DB::DIALECT, tables, user_id, query);
        let mut tx = DB::begin_snapshot(&self.pool)
            .await
            .map_err(QueryError::storage)?;
        let total: i64 = Self::bind_all(sqlx::query(&sql.count), sql.count_binds())
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(QueryError::storage)?;
        let rows = Self::bind_all(sqlx::query(&sql.page), sql.page_binds())
            .fetch_all(&mut *tx)
            .await
            .map_err(QueryError::storage)?;
        tx.commit().await.map_err(QueryError::storage)?;
        let records = rows
            .iter()
            .map(decode_record)
            .collect::<Result<Vec<_>, _>>()
            .map_err(QueryError::Storage)?;
        Ok(log_page(query, records, total.max(0) as u64))
    }

    /// Retention: deletes every day before the last `days` ([`retention_cutoff`]).
    pub(crate) async fn delete_older_than(&self, days: u32) -> Result<u64, StorageError> {
        self.delete_before(retention_cutoff(days, Utc::now().date_naive())?)
            .await
    }

    /// Deletes the records of every UTC day before `day` and their rollup rows in one
    /// transaction, so that the rollup keeps matching the records; returns how many records
    /// were deleted. Whole partitions before `day` are dropped ([`Backend::drop_before`]);
    /// only the rows of a partition that reaches past `day` are deleted one by one.
    pub(crate) async fn delete_before(&self, day: NaiveDate) -> Result<u64, StorageError> {
        let mut tx = self.pool.begin().await?;
        let dropped = DB::drop_before(&mut tx, &self.sql.names, start_of(day)).await?;
        let deleted = DB::bind_instant(sqlx::query(&self.sql.delete_log), start_of(day))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.sql.delete_daily)
            .bind(day.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(dropped + DB::rows_affected(&deleted))
    }

    /// Binds the log query's values; an instant in the backend's own type.
    fn bind_all<'q>(
        mut query: Query<'q, DB, DB::Arguments<'q>>,
        binds: &'q [Bind],
    ) -> Query<'q, DB, DB::Arguments<'q>> {
        for bind in binds {
            query = match bind {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Instant(t) => DB::bind_instant(query, *t),
                Bind::Day(d) => query.bind(d.to_string()),
                Bind::Id(id) => query.bind(*id),
                Bind::Int(n) => query.bind(*n),
            };
        }
        query
    }
}
