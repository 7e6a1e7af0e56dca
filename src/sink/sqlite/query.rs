//! [`ActivityQuery`] for [`SqliteSink`]: stats from the daily rollup, the log from the table.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::Row;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};

use super::SqliteSink;
use crate::query::{ActivityQuery, LogPage, LogQuery, QueryError, Stats, StatsQuery};
use crate::sink::sql::{
    Bind, Dialect, LogSql, LogTables, decode_record, log_page, stats_from_rows,
};

#[async_trait]
impl ActivityQuery for SqliteSink {
    async fn stats(&self, user_id: &str, query: &StatsQuery) -> Result<Stats, QueryError> {
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

    async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError> {
        let tables = LogTables {
            log: &self.sql.log,
            daily: &self.sql.daily,
            select_list: &self.sql.select_list,
        };
        let sql = LogSql::new(Dialect::Sqlite, tables, user_id, query);
        // One read transaction: the count and the page see the same snapshot.
        let mut tx = self.pool.begin().await.map_err(QueryError::storage)?;
        let total: i64 = bind_all(sqlx::query(&sql.count), sql.count_binds())
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(QueryError::storage)?;
        let rows = bind_all(sqlx::query(&sql.page), sql.page_binds())
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
}

/// Binds the log query's values, instants as microseconds (the `timestamp` column's unit).
fn bind_all<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments<'q>>,
    binds: &'q [Bind],
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s.as_str()),
            Bind::Instant(t) => query.bind(t.timestamp_micros()),
            Bind::Day(d) => query.bind(d.to_string()),
            Bind::Id(id) => query.bind(*id),
            Bind::Int(n) => query.bind(*n),
        };
    }
    query
}
