//! [`ActivityQuery`] for [`PostgresSink`]: stats from the daily rollup (`GROUP BY day, model,
//! provider`), the log from the table with the shared filters, offset and keyset cursor.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::Row;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;

use super::PostgresSink;
use crate::query::{ActivityQuery, LogPage, LogQuery, QueryError, Stats, StatsQuery};
use crate::sink::sql::{
    Bind, Dialect, LogSql, LogTables, decode_record, log_page, stats_from_rows,
};

#[async_trait]
impl ActivityQuery for PostgresSink {
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
        let sql = LogSql::new(Dialect::Postgres, tables, user_id, query);
        // One REPEATABLE READ snapshot, so that `total` and the page agree under writes.
        let mut tx = self.pool.begin().await.map_err(QueryError::storage)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(QueryError::storage)?;
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

/// Binds the log query's values in PostgreSQL's types.
fn bind_all<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    binds: &'q [Bind],
) -> Query<'q, Postgres, PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s.as_str()),
            Bind::Instant(t) => query.bind(*t),
            Bind::Day(d) => query.bind(d.to_string()),
            Bind::Id(id) => query.bind(*id),
            Bind::Int(n) => query.bind(*n),
        };
    }
    query
}
