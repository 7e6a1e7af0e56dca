//! [`ReadYourWrites`]: the activity API's reads see the caller's own writes, and many reads
//! share one writer flush.
//!
//! Before it queries, a read asks for a flush and waits (at most
//! [`READ_YOUR_WRITES`](crate::activity::READ_YOUR_WRITES)) until one that *started after its
//! request* has finished: every record queued before the read is then stored. One task does
//! the flushing: woken by a request, it waits [`COALESCE`] for more to arrive, then flushes
//! once for all of them. So 400 concurrent reads cost one or two flushes — and the writer one
//! or two batches — instead of 400 (each flush cuts a batch short).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::watch;
use tower_activity::ActivityWriter;

/// How long the flushing task gathers reads before it flushes for all of them.
pub const COALESCE: Duration = Duration::from_millis(10);

type Flush = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The shared flush of the activity API's reads (cheap to clone).
#[derive(Clone)]
pub struct ReadYourWrites {
    /// The number of the latest request; the task flushes for all up to it.
    wanted: Arc<watch::Sender<u64>>,
    /// The number of the latest request the finished flushes cover.
    done: watch::Receiver<u64>,
    flushes: Arc<AtomicU64>,
}

impl std::fmt::Debug for ReadYourWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadYourWrites")
            .field("flushes", &self.flushes())
            .finish_non_exhaustive()
    }
}

impl ReadYourWrites {
    /// Flushes `writer`'s database sink for the reads (starts the task on the current
    /// runtime). The other sinks are not waited for: an OpenTelemetry collector that is down
    /// must not hold every read back.
    pub fn start(writer: ActivityWriter) -> Self {
        Self::with_flush(Arc::new(move || {
            let writer = writer.clone();
            Box::pin(async move {
                writer.flush_sink(crate::DATABASE_SINK).await;
            })
        }))
    }

    /// With any flush (tests count them).
    fn with_flush(flush: Flush) -> Self {
        let (wanted, mut requests) = watch::channel(0u64);
        let (done_tx, done) = watch::channel(0u64);
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = flushes.clone();
        tokio::spawn(async move {
            // Ends when every handle is dropped.
            while requests.changed().await.is_ok() {
                tokio::time::sleep(COALESCE).await;
                let covered = *requests.borrow_and_update();
                counter.fetch_add(1, Relaxed);
                flush().await;
                done_tx.send_replace(covered);
            }
        });
        ReadYourWrites {
            wanted: Arc::new(wanted),
            done,
            flushes,
        }
    }

    /// Waits until every record queued before this call is stored, or `at_most` has passed.
    pub async fn settle(&self, at_most: Duration) {
        let mut mine = 0;
        self.wanted.send_modify(|n| {
            *n += 1;
            mine = *n;
        });
        let mut done = self.done.clone();
        let _ = tokio::time::timeout(at_most, done.wait_for(|covered| *covered >= mine)).await;
    }

    /// The flushes made so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_reads_share_one_flush_and_later_ones_get_their_own() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let fresh = ReadYourWrites::with_flush(Arc::new(move || {
            let counted = counted.clone();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counted.fetch_add(1, Relaxed);
            })
        }));
        let reads: Vec<_> = (0..400)
            .map(|_| {
                let fresh = fresh.clone();
                tokio::spawn(async move { fresh.settle(Duration::from_secs(1)).await })
            })
            .collect();
        for read in reads {
            read.await.unwrap();
        }
        assert_eq!(calls.load(Relaxed), 1, "400 reads, one flush");
        assert_eq!(fresh.flushes(), 1);
        // A read after that flush started is not covered by it: it gets a new one.
        fresh.settle(Duration::from_secs(1)).await;
        assert_eq!(calls.load(Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_arriving_during_a_flush_waits_for_the_next() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let fresh = ReadYourWrites::with_flush(Arc::new(move || {
            let counted = counted.clone();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                counted.fetch_add(1, Relaxed);
            })
        }));
        let first = tokio::spawn({
            let fresh = fresh.clone();
            async move { fresh.settle(Duration::from_secs(1)).await }
        });
        // Into the first flush, then read: the first flush may have missed this read's records.
        tokio::time::sleep(COALESCE + Duration::from_millis(50)).await;
        fresh.settle(Duration::from_secs(1)).await;
        assert_eq!(
            calls.load(Relaxed),
            2,
            "the second read waited for a flush of its own"
        );
        first.await.unwrap();
    }
}
