//! [`LiveHub`]: one live channel per user, so a feed that falls behind loses — and its
//! `lagged` event counts — only its own user's records.
//!
//! The stored-records broadcast ([`AppState::live`](crate::SharedState::live)) carries everyone's
//! records: a subscriber that lags on it loses records of all users, and the count says so.
//! The hub reads that broadcast once (from the first feed on) and hands each record to its
//! user's channel ([`USER_CAPACITY`] records), which only that user's feeds read. If the hub
//! itself ever lags (it only dispatches, so it should not), it cannot tell whose records it
//! lost: it closes every user's channel, which ends the feeds (a client re-reads and
//! reconnects) rather than report someone else's count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast::{self, Receiver, Sender, error::RecvError};
use tower_activity::ActivityRecord;

/// How many of one user's records a feed may fall behind before it lags.
pub const USER_CAPACITY: usize = 256;

type Channels = Arc<Mutex<HashMap<String, Sender<Arc<ActivityRecord>>>>>;

/// Per-user channels fed from one broadcast of stored records (cheap to clone).
#[derive(Clone)]
pub struct LiveHub {
    source: Arc<dyn Fn() -> Receiver<Arc<ActivityRecord>> + Send + Sync>,
    channels: Channels,
    started: Arc<OnceLock<()>>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub").finish_non_exhaustive()
    }
}

impl LiveHub {
    /// A hub over the broadcast `subscribe` gives receivers of (called at the first feed).
    pub fn new(
        subscribe: impl Fn() -> Receiver<Arc<ActivityRecord>> + Send + Sync + 'static,
    ) -> Self {
        LiveHub {
            source: Arc::new(subscribe),
            channels: Arc::default(),
            started: Arc::default(),
        }
    }

    /// A receiver of `user_id`'s records stored from now on.
    pub fn subscribe(&self, user_id: &str) -> Receiver<Arc<ActivityRecord>> {
        self.started.get_or_init(|| {
            tokio::spawn(dispatch((self.source)(), self.channels.clone()));
        });
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(USER_CAPACITY).0)
            .subscribe()
    }
}

/// Hands each record of `source` to its user's channel, until `source` closes.
async fn dispatch(mut source: Receiver<Arc<ActivityRecord>>, channels: Channels) {
    loop {
        match source.recv().await {
            Ok(record) => {
                let Some(user) = record.user_id.as_deref() else {
                    continue;
                };
                let mut channels = channels.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(tx) = channels.get(user) {
                    if tx.send(record.clone()).is_err() {
                        channels.remove(user);
                    }
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "live feeds: the dispatcher fell behind; ending every feed (clients re-read)"
                );
                channels.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_activity::RecordKind;

    fn record(user: &str) -> Arc<ActivityRecord> {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.user_id = Some(user.to_owned());
        Arc::new(r)
    }

    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never happened");
    }

    #[tokio::test]
    async fn a_lagging_feed_counts_only_its_own_records() {
        let (source, _) = broadcast::channel(100_000);
        let hub = LiveHub::new({
            let source = source.clone();
            move || source.subscribe()
        });
        let mut ada = hub.subscribe("ada");
        // Many records of someone else: none reaches ada's channel, so she does not lag.
        for _ in 0..5_000 {
            source.send(record("bob")).unwrap();
        }
        let mine = record("ada");
        source.send(mine.clone()).unwrap();
        until(|| ada.len() == 1).await;
        assert_eq!(ada.recv().await.unwrap().id, mine.id);
        // More of her own than her channel holds: the lag counts exactly those lost.
        for _ in 0..USER_CAPACITY + 44 {
            source.send(record("ada")).unwrap();
        }
        // Single-threaded: once the hub has taken every record, it has also handed each on.
        until(|| source.is_empty()).await;
        match ada.recv().await {
            Err(RecvError::Lagged(missed)) => assert_eq!(missed, 44),
            other => panic!("{other:?}"),
        }
        for _ in 0..USER_CAPACITY {
            assert_eq!(ada.recv().await.unwrap().user_id.as_deref(), Some("ada"));
        }
    }
}
