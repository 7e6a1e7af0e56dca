//! [`MemoryAccounts`]: users and sessions in memory (`DATABASE_URL=memory:`, tests).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AccountStore, ChatSession, StoreError, User};

/// Users and sessions in memory; everything is gone when the process ends.
#[derive(Debug, Default)]
pub struct MemoryAccounts {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: Vec<User>,
    by_key: HashMap<String, usize>,
    sessions: Vec<(String, ChatSession)>,
}

impl MemoryAccounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation below is a single push/insert: a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl AccountStore for MemoryAccounts {
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn create_user(&self, user: &User, key_hash: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.users.iter().any(|u| u.email == user.email) {
            return Err(StoreError::DuplicateEmail);
        }
        let index = inner.users.len();
        inner.users.push(user.clone());
        inner.by_key.insert(key_hash.to_owned(), index);
        Ok(())
    }

    async fn user_by_key(&self, key_hash: &str) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner.by_key.get(key_hash).map(|&i| inner.users[i].clone()))
    }

    async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner.users.iter().find(|u| u.id == user_id).cloned())
    }

    async fn create_session(&self, user_id: &str, session: &ChatSession) -> Result<(), StoreError> {
        self.lock()
            .sessions
            .push((user_id.to_owned(), session.clone()));
        Ok(())
    }

    async fn sessions(&self, user_id: &str) -> Result<Vec<ChatSession>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .sessions
            .iter()
            .rev()
            .filter(|(owner, _)| owner == user_id)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<ChatSession>, StoreError> {
        Ok(self
            .lock()
            .sessions
            .iter()
            .find(|(owner, s)| owner == user_id && s.id == session_id)
            .map(|(_, s)| s.clone()))
    }
}
