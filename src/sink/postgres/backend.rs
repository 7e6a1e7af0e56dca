//! PostgreSQL's [`Backend`]: `TIMESTAMPTZ` instants, an advisory lock around the migrations
//! (its DDL is transactional, so a failed migration leaves nothing behind), a `REPEATABLE
//! READ` snapshot for the log, and SQLSTATE classes.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgQueryResult, Postgres};
use sqlx::query::Query;
use sqlx::{Executor, PgPool, Transaction};

use super::{SET_TIMEOUTS, partition};
use crate::sink::sql::{Backend, Dialect, Migration, TableNames};

impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;

    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            version: 1,
            description: "activity_log, activity_daily and their indexes",
            sql: include_str!("../../../migrations/postgres/0001_activity_log.sql"),
        },
        Migration {
            version: 2,
            description: "service_tier, cost_source, cost_details, usage_details",
            sql: include_str!("../../../migrations/postgres/0002_cost_details.sql"),
        },
        Migration {
            version: 3,
            description: "activity_log partitioned by time; the old table attached in place",
            sql: include_str!("../../../migrations/postgres/0003_partitions.sql"),
        },
    ];

    fn history_table(history: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {history} (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    }

    /// The rollup has a row per kind: `GROUP BY` adds the kinds the query includes.
    fn stats_statement(daily: &str) -> String {
        format!(
            "SELECT day::text, model, provider, sum(requests)::int8, \
             sum(total_tokens)::int8, sum(cost_usd)::text FROM {daily} \
             WHERE user_id = $1 AND day BETWEEN $2::date AND $3::date \
             AND (kind = 'request' OR $4) GROUP BY day, model, provider"
        )
    }

    fn bind_instant<'q>(
        query: Query<'q, Postgres, PgArguments>,
        instant: DateTime<Utc>,
    ) -> Query<'q, Postgres, PgArguments> {
        query.bind(instant)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// The lock is keyed by the history table's name, so sinks with other table names do not
    /// wait for each other; it ends with the transaction.
    async fn begin_migrations(
        pool: &PgPool,
        names: &TableNames,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(names.migrations_table())
            .execute(&mut *tx)
            .await?;
        if let Some(schema) = names.schema() {
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            // Not `raw_sql(..).execute(&mut *tx)`: rustc cannot prove that `async fn`'s future
            // `Send` for every lifetime of the connection, as this trait asks; `Executor`'s
            // boxed future is.
            tx.execute(sqlx::raw_sql(&create)).await?;
        }
        Ok(tx)
    }

    /// Nothing: the server keeps nothing per client once its connections are gone.
    async fn after_close(_pool: &PgPool) {}

    /// One round trip: the snapshot and the sink's timeouts are set with the `BEGIN`.
    async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin_with(format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; {SET_TIMEOUTS}"
        ))
        .await
    }

    /// Drops every time partition that ends by `cutoff` ([`partition::drop_before`]).
    async fn drop_before(
        tx: &mut Transaction<'static, Postgres>,
        names: &TableNames,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        partition::drop_before(tx, names, cutoff).await
    }

    /// SQLSTATE classes that are the batch's fault: 22 data exception (a value out of range),
    /// 23 integrity constraint violation, 54 program limit exceeded (a value too large for an
    /// index). Everything else — connection exceptions (08), an administrator's termination
    /// (57P01), lock timeouts and deadlocks (40, 55P03), too many connections (53) — is the
    /// store's state and worth retrying.
    fn permanent_code(code: &str) -> bool {
        ["22", "23", "54"]
            .iter()
            .any(|class| code.starts_with(class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_constraint_errors_are_permanent_connection_errors_transient() {
        for code in ["23505", "23514", "22003", "22P02", "54000"] {
            assert!(Postgres::permanent_code(code), "{code}");
        }
        for code in ["08006", "57P01", "40P01", "53300", "55P03", "42P01"] {
            assert!(!Postgres::permanent_code(code), "{code}");
        }
    }
}
