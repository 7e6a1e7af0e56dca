//! [`MemoryAccounts`]: users and sessions in memory (`DATABASE_URL=memory:`, tests).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AccountStore, ChatSession, KeyDigest, StoreError, User};

/// Users and sessions in memory; everything is gone when the process ends.
#[derive(Debug, Default)]
pub struct MemoryAccounts {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: Vec<User>,
    /// By the key's SHA-256.
    by_key: HashMap<KeyDigest, usize>,
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

    async fn create_user(&self, user: &User, key: &KeyDigest) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.users.iter().any(|u| u.email == user.email) {
            return Err(StoreError::DuplicateEmail);
        }
        let index = inner.users.len();
        inner.users.push(user.clone());
        inner.by_key.insert(*key, index);
        Ok(())
    }

    async fn user_by_key(&self, key: &KeyDigest) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner.by_key.get(key).map(|&i| inner.users[i].clone()))
    }

    fn user_id_at_hand(&self, key: &KeyDigest) -> Option<String> {
        let inner = self.lock();
        inner.by_key.get(key).map(|&i| inner.users[i].id.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::key_digest;

    #[tokio::test]
    async fn a_key_is_found_by_its_digest() {
        let store = MemoryAccounts::default();
        let user = User {
            id: "u1".into(),
            email: "u1@example.com".into(),
        };
        store
            .create_user(&user, &key_digest("sk-gw-a"))
            .await
            .unwrap();

        assert_eq!(
            store.user_by_key(&key_digest("sk-gw-a")).await.unwrap(),
            Some(user)
        );
        assert_eq!(
            store.user_id_at_hand(&key_digest("sk-gw-a")).as_deref(),
            Some("u1")
        );
        assert_eq!(store.user_id_at_hand(&key_digest("sk-gw-b")), None);
        assert_eq!(
            store.user_by_key(&key_digest("sk-gw-b")).await.unwrap(),
            None
        );
    }
}
