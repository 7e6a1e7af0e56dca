//! Settlement: the [`Settle`] hook a budget puts on each admitted request, which hands the
//! record's exact usage to the store — at once when the store keeps its counters in memory,
//! to the layer's batching task ([`batch`](super::batch)) when the store batches, else on a
//! task of its own (with retries) — records the thresholds it crossed, and is counted so that [`BudgetLayer::flush`](super::BudgetLayer::flush) can wait
//! for it.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::attribution::Attribution;
use crate::record::ActivityRecord;
use crate::settlement::Settle;

use super::events;
use super::layer::Shared;
use super::store::{Admission, CounterState};
use super::usage::Usage;
use super::window::Metric;

/// How often a failed settlement is tried again, and the first wait (doubling each time, to
/// about 10 s in all): a store that is down for longer loses the settlement (counted).
const SETTLE_ATTEMPTS: u32 = 9;
const FIRST_RETRY: Duration = Duration::from_millis(20);

/// A snapshot of a budget layer's counters ([`BudgetLayer::stats`](super::BudgetLayer::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetStats {
    /// Requests admitted with a reservation.
    pub admitted: u64,
    /// Requests refused (429 or 402), never sent on.
    pub refused: u64,
    /// Requests no counter applied to (no subject in any scope), sent on unchecked.
    pub unchecked: u64,
    /// Admissions the store failed; sent on unchecked (or answered 503 when the layer fails
    /// closed).
    pub store_errors: u64,
    /// Reservations settled with a record's usage.
    pub settled: u64,
    /// Reservations released without a record (no activity layer inside).
    pub released: u64,
    /// Settlements the store still failed after every retry: the counters miss that usage.
    pub settle_failed: u64,
    /// Settlements still running.
    pub pending: u64,
}

/// The layer's counters and the settlements in flight.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    pub(super) admitted: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) unchecked: AtomicU64,
    pub(super) store_errors: AtomicU64,
    settled: AtomicU64,
    released: AtomicU64,
    settle_failed: AtomicU64,
    pending: AtomicU64,
    idle: Notify,
}

impl Tracker {
    pub(super) fn stats(&self) -> BudgetStats {
        BudgetStats {
            admitted: self.admitted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            unchecked: self.unchecked.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            settled: self.settled.load(Relaxed),
            released: self.released.load(Relaxed),
            settle_failed: self.settle_failed.load(Relaxed),
            pending: self.pending.load(SeqCst),
        }
    }

    /// Waits until no settlement is running.
    pub(super) async fn idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.pending.load(SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(super) fn begin(&self) {
        self.pending.fetch_add(1, SeqCst);
    }

    pub(super) fn end(&self) {
        if self.pending.fetch_sub(1, SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// The hook on one admitted request.
pub(super) struct BudgetSettle {
    pub(super) shared: Arc<Shared>,
    pub(super) admission: Admission,
    pub(super) who: Option<Attribution>,
    pub(super) runtime: Handle,
}

impl Settle for BudgetSettle {
    fn settle(self: Box<Self>, record: &ActivityRecord) {
        let used = Usage {
            spend: record.cost_usd.unwrap_or_default(),
            tokens: record
                .input_tokens
                .unwrap_or(0)
                .saturating_add(record.output_tokens.unwrap_or(0)),
            requests: 1,
        };
        (*self).finish(used, true);
    }

    fn release(self: Box<Self>) {
        // Without a record nothing is known but that the request was sent on.
        let used = Usage {
            requests: 1,
            ..Usage::ZERO
        };
        (*self).finish(used, false);
    }
}

impl BudgetSettle {
    /// Settles at once when the store can
    /// ([`BudgetStore::settle_now`](super::BudgetStore::settle_now)), else hands the
    /// settlement to the layer's batching task (a store that
    /// [batches](super::BudgetStore::batches_settlements)) or to a task of its own.
    fn finish(self, used: Usage, with_record: bool) {
        let BudgetSettle {
            shared,
            admission,
            who,
            runtime,
        } = self;
        let job = Job {
            admission,
            used,
            who,
            with_record,
        };
        if let Some(Ok(states)) = shared.store.settle_now(&job.admission, &job.used) {
            job.done(&shared, &states);
            return;
        }
        // Not at once (or the store failed at once: the retries take it from here).
        shared.tracker.begin();
        let job = if shared.store.batches_settlements() {
            match shared.queue.send(job, &shared, &runtime) {
                None => return,
                Some(job) => job,
            }
        } else {
            job
        };
        job.spawn(shared, &runtime);
    }
}

/// One settlement on its way to the store.
pub(super) struct Job {
    pub(super) admission: Admission,
    pub(super) used: Usage,
    pub(super) who: Option<Attribution>,
    /// Settled from a record (else released without one).
    pub(super) with_record: bool,
}

impl Job {
    /// Settles on a task of its own, retrying while the store fails (the tracker has counted
    /// it begun; the task ends it).
    pub(super) fn spawn(self, shared: Arc<Shared>, runtime: &Handle) {
        runtime.spawn(async move {
            match settle(&shared, &self.admission, &self.used).await {
                Some(states) => self.done(&shared, &states),
                None => {
                    shared.tracker.settle_failed.fetch_add(1, Relaxed);
                }
            }
            shared.tracker.end();
        });
    }

    /// Counts a settlement the store took, and records the thresholds it crossed.
    pub(super) fn done(&self, shared: &Shared, states: &[CounterState]) {
        let counter = if self.with_record {
            &shared.tracker.settled
        } else {
            &shared.tracker.released
        };
        counter.fetch_add(1, Relaxed);
        crossings(shared, self.who.as_ref(), states, &self.used);
    }
}

/// The store's settlement, tried again with backoff while it fails.
async fn settle(shared: &Shared, admission: &Admission, used: &Usage) -> Option<Vec<CounterState>> {
    let mut wait = FIRST_RETRY;
    for attempt in 1..=SETTLE_ATTEMPTS {
        match shared.store.settle(admission, used).await {
            Ok(states) => return Some(states),
            Err(e) if attempt == SETTLE_ATTEMPTS => {
                tracing::error!(
                    reservation = %admission.id,
                    "budget settlement failed {attempt} times, its usage is lost: {e}"
                );
            }
            Err(e) => {
                tracing::warn!(reservation = %admission.id, "budget settlement failed, retrying: {e}");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    None
}

/// Records a `budget.threshold` event for each threshold a counter's usage crossed.
fn crossings(shared: &Shared, who: Option<&Attribution>, states: &[CounterState], used: &Usage) {
    let Some(events) = &shared.events else {
        return;
    };
    for state in states {
        for metric in Metric::ALL {
            let Some(limit) = state.limits.get(metric).filter(|l| *l > Decimal::ZERO) else {
                continue;
            };
            let after = state.used.get(metric);
            let before = after - used.get(metric);
            for &t in &shared.thresholds {
                let level = limit * t;
                if before < level && after >= level {
                    events.record_raw(events::threshold(
                        who,
                        &state.counter,
                        metric,
                        t,
                        limit,
                        after,
                    ));
                }
            }
        }
    }
}
