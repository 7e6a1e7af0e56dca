//! [`SqliteAccounts`]: users and sessions in SQLite, on the activity sink's pool.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use super::{AccountStore, ChatSession, KeyDigest, StoreError, User, key_hex};

/// Users and chat sessions in the `gateway_users` and `gateway_chat_sessions` tables of a
/// SQLite database (timestamps as microseconds since the epoch).
#[derive(Debug, Clone)]
pub struct SqliteAccounts {
    pool: SqlitePool,
}

impl SqliteAccounts {
    /// The store on `pool`; call [`AccountStore::migrate`] before use.
    pub fn new(pool: SqlitePool) -> Self {
        SqliteAccounts { pool }
    }

    /// The user the one-parameter `SELECT id, email …` statement `sql` finds for `value`:
    /// the lookup by key and by id, written once.
    async fn user_where(&self, sql: &'static str, value: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| {
            Ok(User {
                id: row.try_get("id").map_err(backend)?,
                email: row.try_get("email").map_err(backend)?,
            })
        })
        .transpose()
    }
}

const MIGRATE: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS gateway_users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        key_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS gateway_chat_sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES gateway_users (id),
        title TEXT NOT NULL,
        model TEXT,
        created_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS gateway_chat_sessions_user
        ON gateway_chat_sessions (user_id, created_at DESC)",
];

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

fn session(row: &sqlx::sqlite::SqliteRow) -> Result<ChatSession, StoreError> {
    let micros: i64 = row.try_get("created_at").map_err(backend)?;
    Ok(ChatSession {
        id: row.try_get("id").map_err(backend)?,
        title: row.try_get("title").map_err(backend)?,
        model: row.try_get("model").map_err(backend)?,
        created_at: DateTime::from_timestamp_micros(micros).unwrap_or_default(),
    })
}

#[async_trait]
impl AccountStore for SqliteAccounts {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for statement in MIGRATE {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn create_user(&self, user: &User, key: &KeyDigest) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO gateway_users (id, email, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(key_hex(key))
        .bind(Utc::now().timestamp_micros())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::DuplicateEmail)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn user_by_key(&self, key: &KeyDigest) -> Result<Option<User>, StoreError> {
        self.user_where(
            "SELECT id, email FROM gateway_users WHERE key_hash = ?1",
            &key_hex(key),
        )
        .await
    }

    async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.user_where("SELECT id, email FROM gateway_users WHERE id = ?1", user_id)
            .await
    }

    async fn create_session(&self, user_id: &str, session: &ChatSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateway_chat_sessions (id, user_id, title, model, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&session.id)
        .bind(user_id)
        .bind(&session.title)
        .bind(&session.model)
        .bind(session.created_at.timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn sessions(&self, user_id: &str) -> Result<Vec<ChatSession>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, title, model, created_at FROM gateway_chat_sessions
             WHERE user_id = ?1 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(session).collect()
    }

    async fn session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<ChatSession>, StoreError> {
        let row = sqlx::query(
            "SELECT id, title, model, created_at FROM gateway_chat_sessions
             WHERE id = ?1 AND user_id = ?2",
        )
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(session).transpose()
    }
}
