//! The writer's side of a [`RecordObserver`]: the call on the caller's thread, its counters,
//! and the warnings for its panics and for records refused after shutdown.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use super::{DropWarning, WriterStats};
use crate::record::ActivityRecord;
use crate::sink::RecordObserver;

/// An observer of a writer's [`FanOut`](crate::sink::FanOut) and its counters.
pub(super) struct Observed {
    pub(super) name: Arc<str>,
    observer: Box<dyn RecordObserver>,
    /// Calls that returned.
    observed: AtomicU64,
    /// Calls that panicked.
    failed: AtomicU64,
    /// Records refused after shutdown.
    dropped_closed: AtomicU64,
    panics: DropWarning,
    after_close: DropWarning,
    epoch: Instant,
}

impl Observed {
    pub(super) fn new(name: Arc<str>, observer: Box<dyn RecordObserver>) -> Self {
        Observed {
            name,
            observer,
            observed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped_closed: AtomicU64::new(0),
            panics: DropWarning::new(),
            after_close: DropWarning::new(),
            epoch: Instant::now(),
        }
    }

    /// Shows `record` to the observer; a panic is caught, counted and warned about.
    #[inline]
    pub(super) fn observe(&self, record: &ActivityRecord) {
        match catch_unwind(AssertUnwindSafe(|| self.observer.observe(record))) {
            Ok(()) => {
                self.observed.fetch_add(1, Relaxed);
            }
            Err(_) => self.panicked(),
        }
    }

    #[cold]
    fn panicked(&self) {
        self.failed.fetch_add(1, Relaxed);
        if let Some(n) = self.panics.dropped(self.epoch) {
            tracing::warn!(
                sink = %self.name,
                failed = n,
                "activity record observer panicked: {n} record(s) not observed"
            );
        }
    }

    /// Counts a record refused because the writer is shut down.
    #[cold]
    pub(super) fn dropped_closed(&self) {
        self.dropped_closed.fetch_add(1, Relaxed);
        if let Some(n) = self.after_close.dropped(self.epoch) {
            tracing::warn!(
                sink = %self.name,
                dropped = n,
                "activity writer is shut down: dropped {n} record(s) recorded after shutdown"
            );
        }
    }

    /// The observer's counters, as a sink's: a call is a record `enqueued`, `written` when it
    /// returned and `failed` when it panicked; nothing is ever queued or batched (the
    /// writer's total `batches` stays the sinks' batches).
    pub(super) fn stats(&self) -> WriterStats {
        let written = self.observed.load(Relaxed);
        let failed = self.failed.load(Relaxed);
        WriterStats {
            enqueued: written + failed,
            written,
            failed,
            dropped_closed: self.dropped_closed.load(Relaxed),
            ..WriterStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::record::RecordKind;

    struct Panics;

    impl RecordObserver for Panics {
        fn observe(&self, _: &ActivityRecord) {
            panic!("observer bug");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn panics_are_counted_failed_and_warned_about_once_a_second() {
        let o = Observed::new("p".into(), Box::new(Panics));
        let record = ActivityRecord::new(RecordKind::Request);
        for _ in 0..5 {
            o.observe(&record);
        }
        let s = o.stats();
        assert_eq!((s.enqueued, s.written, s.failed, s.batches), (5, 0, 5, 0));
        assert_eq!(
            o.panics.pending.load(Relaxed),
            4,
            "the first panic warned, the other four wait for the next second"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        o.observe(&record);
        assert_eq!(o.panics.pending.load(Relaxed), 0, "the next warning says 5");
    }
}
