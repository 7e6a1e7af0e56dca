//! [`Storage`]: the activity sink, its queries and the account store, chosen by
//! `DATABASE_URL` at startup and kept in one database.

use std::sync::Arc;

use tower_activity::{ActivityQuery, ActivitySink, MemorySink};

use super::store::{AccountStore, MemoryAccounts};

/// Where everything the gateway keeps goes.
#[derive(Clone)]
pub struct Storage {
    /// What the activity writer writes to.
    pub sink: Arc<dyn ActivitySink>,
    /// What `/user/activity/*` reads from (the same records).
    pub activity: Arc<dyn ActivityQuery>,
    /// Users and chat sessions.
    pub accounts: Arc<dyn AccountStore>,
    /// For the startup log: which store, without credentials.
    pub description: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Everything in memory: nothing survives the process.
    pub fn memory() -> Self {
        let sink = Arc::new(MemorySink::new());
        Storage {
            sink: sink.clone(),
            activity: sink,
            accounts: Arc::new(MemoryAccounts::default()),
            description: "memory (nothing is kept after exit)".to_owned(),
        }
    }

    /// Opens (and migrates) the store `database_url` names. `Err` is a one-line cause with a
    /// hint.
    pub async fn open(database_url: &str) -> Result<Self, String> {
        let storage = match database_url.split_once(':').map(|(scheme, _)| scheme) {
            Some("memory") => Storage::memory(),
            _ => {
                return Err(format!(
                    "DATABASE_URL {:?} is not supported yet: use memory: (the SQL stores are on their way)",
                    redact(database_url)
                ));
            }
        };
        storage
            .accounts
            .migrate()
            .await
            .map_err(|e| format!("cannot prepare the account tables: {e}"))?;
        Ok(storage)
    }
}

/// `database_url` without its password, for logs and messages.
pub fn redact(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => database_url.to_owned(),
    }
}
