//! [`AccountStore`]: the gateway's own users and chat sessions.
//!
//! A small trait held as `Arc<dyn AccountStore>`, one implementation per file: in memory
//! (`DATABASE_URL=memory:`), SQLite and PostgreSQL (sqlx, runtime queries, tables created by an
//! idempotent `migrate`). The activity records live in the same database, in the activity
//! sink's tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod cache;
pub mod memory;
pub mod postgres;
pub mod sqlite;

pub use cache::CachedAccounts;
pub use memory::MemoryAccounts;
pub use postgres::PostgresAccounts;
pub use sqlite::SqliteAccounts;

/// A registered user. The API key itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id (a UUID v7), the records' `user_id`.
    pub id: String,
    /// The e-mail address, lowercase.
    pub email: String,
}

/// A chat session, owned by one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatSession {
    /// The session's id (a UUID v7), the records' `session_id`.
    pub id: String,
    /// The title the user gave.
    pub title: String,
    /// The model the session was created for, if any.
    pub model: Option<String>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The e-mail address is already registered.
    #[error("an account for this e-mail address already exists")]
    DuplicateEmail,
    /// The database failed.
    #[error("account store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A [`StoreError::Backend`] from any error.
    pub fn backend(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(cause.into())
    }
}

/// The SHA-256 of an API key ([`auth::key_digest`](crate::auth::key_digest)): how a store
/// finds a key's user. The SQL stores keep it as lowercase hex ([`key_hex`]); the in-memory
/// maps as it is.
pub type KeyDigest = [u8; 32];

/// `key`'s digest as the SQL stores keep it: 64 lowercase hex digits.
pub fn key_hex(key: &KeyDigest) -> String {
    hex::encode(key)
}

/// Users (by e-mail and by API-key hash) and their chat sessions.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates tables and indexes if they are missing; safe to call on every start.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Adds a user with the API key whose SHA-256 is `key`; [`StoreError::DuplicateEmail`]
    /// when `email` is taken.
    async fn create_user(&self, user: &User, key: &KeyDigest) -> Result<(), StoreError>;

    /// The user whose API key has the SHA-256 `key`.
    async fn user_by_key(&self, key: &KeyDigest) -> Result<Option<User>, StoreError>;

    /// The id of the user whose API key has the SHA-256 `key`, when the store has it at hand
    /// without I/O (a cache, [`CachedAccounts`]); `None` (the default) means "ask
    /// [`user_by_key`](Self::user_by_key)", not "no such user". Every authenticated request
    /// asks this first: it takes no boxed future and copies only the id.
    fn user_id_at_hand(&self, key: &KeyDigest) -> Option<String> {
        let _ = key;
        None
    }

    /// The user with id `user_id` (the admin API names users by id).
    async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Adds a chat session owned by `user_id`.
    async fn create_session(&self, user_id: &str, session: &ChatSession) -> Result<(), StoreError>;

    /// `user_id`'s sessions, newest first.
    async fn sessions(&self, user_id: &str) -> Result<Vec<ChatSession>, StoreError>;

    /// `session_id` if `user_id` owns it (another user's session is `None`, like a missing one).
    async fn session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<ChatSession>, StoreError>;
}
