//! The SQLite migration runner: `BEGIN IMMEDIATE` (so that two processes opening the same
//! file migrate one after the other), then every missing version, in one transaction.

use sqlx::{Connection, SqliteConnection, SqlitePool};

use crate::sink::sql::{Migration, StorageError, TableNames, render};

/// The migrations, oldest first. Never edit a released one: add a new version.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "activity_log, activity_daily and their indexes",
    sql: include_str!("../../../migrations/sqlite/0001_activity_log.sql"),
}];

pub(super) async fn run(pool: &SqlitePool, names: &TableNames) -> Result<(), StorageError> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    match apply(&mut conn, names).await {
        Ok(()) => {
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => {
            if sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.is_err() {
                // A connection stuck in a transaction must not go back to the pool.
                let _ = conn.detach().close().await;
            }
            Err(e)
        }
    }
}

async fn apply(conn: &mut SqliteConnection, names: &TableNames) -> Result<(), StorageError> {
    let history = names.migrations_table();
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {history} (version INTEGER PRIMARY KEY, \
         description TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ))
    .execute(&mut *conn)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar(&format!("SELECT version FROM {history}"))
        .fetch_all(&mut *conn)
        .await?;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let failed = |source| StorageError::Migration {
            version: m.version,
            description: m.description,
            source,
        };
        sqlx::raw_sql(&render(m.sql, names))
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
        sqlx::query(&format!(
            "INSERT INTO {history} (version, description) VALUES (?1, ?2)"
        ))
        .bind(m.version)
        .bind(m.description)
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    }
    Ok(())
}
