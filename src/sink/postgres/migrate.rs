//! The PostgreSQL migration runner: one transaction under an advisory lock keyed by the
//! history table's name, then every missing version. PostgreSQL's DDL is transactional, so a
//! failed migration leaves nothing behind.

use sqlx::PgPool;

use crate::sink::sql::{Migration, StorageError, TableNames, render};

/// The migrations, oldest first. Never edit a released one: add a new version.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "activity_log, activity_daily and their indexes",
    sql: include_str!("../../../migrations/postgres/0001_activity_log.sql"),
}];

pub(super) async fn run(pool: &PgPool, names: &TableNames) -> Result<(), StorageError> {
    let history = names.migrations_table();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&history)
        .execute(&mut *tx)
        .await?;
    if let Some(schema) = names.schema() {
        sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {history} (version BIGINT PRIMARY KEY, \
         description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ))
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar(&format!("SELECT version FROM {history}"))
        .fetch_all(&mut *tx)
        .await?;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let failed = |source| StorageError::Migration {
            version: m.version,
            description: m.description,
            source,
        };
        sqlx::raw_sql(&render(m.sql, names))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query(&format!(
            "INSERT INTO {history} (version, description) VALUES ($1, $2)"
        ))
        .bind(m.version)
        .bind(m.description)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    }
    tx.commit().await?;
    Ok(())
}
