//! [`BroadcastSink`]: a sink wrapper that publishes every stored record to live subscribers.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{ActivitySink, SinkError};
use crate::query::{ActivityQuery, LogPage, LogQuery, QueryError, Stats, StatsQuery};
use crate::record::ActivityRecord;

/// How many records a [`BroadcastSink`] keeps for a slow subscriber before it lags, unless
/// [`BroadcastSink::with_capacity`] says otherwise.
pub const DEFAULT_BROADCAST_CAPACITY: usize = 1024;

/// Wraps a sink and, after each successful [`write`](ActivitySink::write), publishes every
/// record of the batch on a [`tokio::sync::broadcast`] channel: a live feed of what was
/// stored (a dashboard's "new request" events, a websocket, a metrics tap).
///
/// - **Stored first, then published.** A record is published only once the inner sink has
///   returned `Ok` for its batch, so a subscriber never sees a record that a query would not
///   find. A failed batch publishes nothing; the writer's retry, or the halves of a split
///   batch, publish their records when they succeed.
/// - **At most once per successful write.** The writer does not write a stored batch again,
///   but an application that writes the same record twice (the store keeps one copy) publishes
///   it twice: subscribers that must not double-count de-duplicate by
///   [`ActivityRecord::id`].
/// - **Lossy for slow subscribers.** The channel keeps the last `capacity` records. A receiver
///   that falls further behind loses the oldest ones and its next `recv` returns
///   [`broadcast::error::RecvError::Lagged`] with the number lost; it can then re-read what it
///   missed from the store (a dashboard re-fetches its totals and first log page). The writer
///   never waits for a subscriber.
/// - **Cheap without subscribers.** Records are copied into `Arc`s only while at least one
///   receiver exists.
///
/// The writer owns the sink it is given, so keep a clone to subscribe later: `BroadcastSink`
/// is [`Clone`] when the inner sink is (wrap a sink that is not in an [`Arc`]), and clones
/// share one channel. It also answers [`ActivityQuery`] through the inner sink.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_activity::{ActivityRecord, ActivityWriter, RecordKind, WriterConfig};
/// use tower_activity::sink::{BroadcastSink, MemorySink};
///
/// let sink = BroadcastSink::new(MemorySink::new());
/// let mut feed = sink.subscribe();
/// let writer = ActivityWriter::start(sink.clone(), WriterConfig::default());
///
/// let mut record = ActivityRecord::new(RecordKind::Request);
/// record.user_id = Some("alice".into());
/// writer.record(record.clone());
///
/// let published = feed.recv().await.unwrap(); // an Arc<ActivityRecord>, once stored
/// assert_eq!(published.id, record.id);
/// assert_eq!(sink.inner().len(), 1);
/// writer.shutdown(std::time::Duration::from_secs(1)).await;
/// # }
/// ```
pub struct BroadcastSink<S> {
    inner: S,
    sender: broadcast::Sender<Arc<ActivityRecord>>,
}

impl<S> BroadcastSink<S> {
    /// Wraps `inner` with a channel of [`DEFAULT_BROADCAST_CAPACITY`] records.
    pub fn new(inner: S) -> Self {
        Self::with_capacity(inner, DEFAULT_BROADCAST_CAPACITY)
    }

    /// Wraps `inner` with a channel that keeps `capacity` records (at least 1) for each
    /// subscriber before that subscriber lags.
    pub fn with_capacity(inner: S, capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        BroadcastSink { inner, sender }
    }

    /// A receiver of every record stored from now on (not the ones before).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ActivityRecord>> {
        self.sender.subscribe()
    }

    /// How many receivers are subscribed.
    pub fn receiver_count(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped sink, without the channel (current receivers see the channel close).
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn publish(&self, records: &[ActivityRecord]) {
        for record in records {
            if self.sender.receiver_count() == 0 {
                return;
            }
            // Err only when every receiver is gone meanwhile: nobody to tell.
            let _ = self.sender.send(Arc::new(record.clone()));
        }
    }
}

impl<S: Clone> Clone for BroadcastSink<S> {
    fn clone(&self) -> Self {
        BroadcastSink {
            inner: self.inner.clone(),
            sender: self.sender.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for BroadcastSink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastSink")
            .field("inner", &self.inner)
            .field("receivers", &self.sender.receiver_count())
            .finish()
    }
}

#[async_trait]
impl<S: ActivitySink> ActivitySink for BroadcastSink<S> {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        self.inner.write(records).await?;
        self.publish(records);
        Ok(())
    }

    /// The inner sink's: the feed is published only after the inner sink has stored.
    fn durable(&self) -> bool {
        self.inner.durable()
    }
}

#[async_trait]
impl<S: ActivityQuery> ActivityQuery for BroadcastSink<S> {
    async fn stats(&self, user_id: &str, query: &StatsQuery) -> Result<Stats, QueryError> {
        self.inner.stats(user_id, query).await
    }

    async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError> {
        self.inner.log(user_id, query).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::broadcast::error::{RecvError, TryRecvError};

    use super::*;
    use crate::record::RecordKind;
    use crate::sink::MemorySink;

    fn records(n: usize) -> Vec<ActivityRecord> {
        (0..n)
            .map(|_| ActivityRecord::new(RecordKind::Request))
            .collect()
    }

    /// Fails the first `failures` writes, then stores into a `MemorySink`.
    struct Flaky {
        failures: AtomicUsize,
        store: MemorySink,
    }

    #[async_trait]
    impl ActivitySink for Flaky {
        async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(SinkError::transient("down"));
            }
            self.store.write(records).await
        }
    }

    #[tokio::test]
    async fn publishes_each_record_after_the_inner_write_in_batch_order() {
        let sink = BroadcastSink::new(MemorySink::new());
        let (mut a, mut b) = (sink.subscribe(), sink.subscribe());
        let batch = records(3);
        sink.write(&batch).await.unwrap();
        assert_eq!(sink.inner().len(), 3);
        for rx in [&mut a, &mut b] {
            for record in &batch {
                assert_eq!(*rx.recv().await.unwrap(), *record);
            }
            assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
        }
    }

    #[tokio::test]
    async fn a_failed_write_publishes_nothing_and_its_retry_publishes_once() {
        let sink = BroadcastSink::new(Flaky {
            failures: AtomicUsize::new(1),
            store: MemorySink::new(),
        });
        let mut rx = sink.subscribe();
        let batch = records(2);
        assert!(sink.write(&batch).await.unwrap_err().is_transient());
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
        sink.write(&batch).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().id, batch[0].id);
        assert_eq!(rx.recv().await.unwrap().id, batch[1].id);
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
    }

    #[tokio::test]
    async fn a_lagging_receiver_is_told_how_many_it_lost_then_reads_the_newest() {
        let sink = BroadcastSink::with_capacity(MemorySink::new(), 2);
        let mut rx = sink.subscribe();
        let batch = records(5);
        sink.write(&batch).await.unwrap();
        assert_eq!(rx.recv().await.unwrap_err(), RecvError::Lagged(3));
        assert_eq!(rx.recv().await.unwrap().id, batch[3].id);
        assert_eq!(rx.recv().await.unwrap().id, batch[4].id);
        assert_eq!(sink.inner().len(), 5, "the store lost nothing");
    }

    #[tokio::test]
    async fn clones_share_the_channel_and_writes_without_subscribers_succeed() {
        let sink = BroadcastSink::with_capacity(MemorySink::new(), 0);
        sink.write(&records(1)).await.unwrap();
        let handle = sink.clone();
        let mut rx = handle.subscribe();
        assert_eq!(sink.receiver_count(), 1);
        let batch = records(1);
        sink.write(&batch).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().id, batch[0].id);
        assert_eq!(
            handle.inner().len(),
            2,
            "clones share the inner MemorySink too"
        );
        drop(sink);
        drop(handle);
        assert_eq!(rx.recv().await.unwrap_err(), RecvError::Closed);
    }

    #[tokio::test]
    async fn answers_queries_through_the_inner_store() {
        let sink = BroadcastSink::new(MemorySink::new());
        let mut batch = records(2);
        batch[0].user_id = Some("alice".into());
        sink.write(&batch).await.unwrap();
        let page = sink.log("alice", &LogQuery::default()).await.unwrap();
        assert_eq!((page.total, page.logs[0].id), (1, batch[0].id));
    }
}
