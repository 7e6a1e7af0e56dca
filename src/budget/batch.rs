//! [`Queue`]: settlements for a store that batches them
//! ([`BudgetStore::batches_settlements`]), taken by one long-lived task that sends whatever
//! has queued up as one [`settle_many`](BudgetStore::settle_many) — with Redis one pipeline,
//! one round trip for every settlement that arrived while the previous batch was out.
//!
//! Nothing is lost on the way: a settlement the batch could not make is retried on a task of
//! its own (with backoff, as any other), and one that finds no task to take it (the task's
//! runtime has gone) starts a new one, or settles on its own task.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender, error::SendError};

use super::layer::Shared;
use super::settle::Job;
use super::store::{Admission, BudgetStore};
use super::usage::Usage;

/// The most settlements one batch carries.
const MAX_BATCH: usize = 256;

/// The way to the batching task (started with the first settlement).
#[derive(Debug, Default)]
pub(super) struct Queue(Mutex<Option<UnboundedSender<Job>>>);

impl Queue {
    /// Hands `job` to the batching task, starting it on `runtime` when there is none (or its
    /// runtime has gone); gives the job back when no task could take it.
    pub(super) fn send(&self, job: Job, shared: &Arc<Shared>, runtime: &Handle) -> Option<Job> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let job = match slot.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return None,
                Err(SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        runtime.spawn(work(shared.store.clone(), Arc::downgrade(shared), rx));
        let back = tx.send(job).err().map(|SendError(job)| job);
        *slot = Some(tx);
        back
    }
}

/// The batching task: runs until the layer is gone (its sender with it).
async fn work(store: Arc<dyn BudgetStore>, shared: Weak<Shared>, mut rx: UnboundedReceiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch: Vec<(&Admission, &Usage)> =
            jobs.iter().map(|j| (&j.admission, &j.used)).collect();
        let mut results = store.settle_many(&batch).await.into_iter();
        drop(batch);
        let Some(shared) = shared.upgrade() else {
            // The layer is gone, and its counters with it: the store has the settlements.
            return;
        };
        for job in jobs.drain(..) {
            match results.next() {
                Some(Ok(states)) => {
                    job.done(&shared, &states);
                    shared.tracker.end();
                }
                Some(Err(e)) => {
                    tracing::warn!(
                        reservation = %job.admission.id,
                        "budget settlement failed in a batch, retrying on its own: {e}"
                    );
                    job.spawn(shared.clone(), &Handle::current());
                }
                None => {
                    tracing::warn!(
                        reservation = %job.admission.id,
                        "the budget store answered a batch short, settling the rest on their own"
                    );
                    job.spawn(shared.clone(), &Handle::current());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use super::*;
    use crate::budget::{
        BudgetError, BudgetLayer, Check, CounterKey, CounterState, Limits, MemoryBudgetStore,
        Metric, Scope, Verdict, Window,
    };

    /// A memory store that says it batches, records each batch's size, and can fail the
    /// first batch whole (as a pipeline whose connection dropped before sending).
    struct Batching {
        inner: MemoryBudgetStore,
        batches: Arc<Mutex<Vec<usize>>>,
        fail_first: AtomicBool,
    }

    #[async_trait]
    impl BudgetStore for Batching {
        async fn admit(&self, a: &Admission) -> Result<Verdict, BudgetError> {
            self.inner.admit(a).await
        }
        async fn settle(&self, a: &Admission, u: &Usage) -> Result<Vec<CounterState>, BudgetError> {
            self.inner.settle(a, u).await
        }
        async fn settle_many(
            &self,
            batch: &[(&Admission, &Usage)],
        ) -> Vec<Result<Vec<CounterState>, BudgetError>> {
            self.batches.lock().unwrap().push(batch.len());
            if self.fail_first.swap(false, Ordering::SeqCst) {
                return batch
                    .iter()
                    .map(|_| Err(BudgetError::store("down")))
                    .collect();
            }
            let mut out = Vec::new();
            for (a, u) in batch {
                out.push(self.inner.settle(a, u).await);
            }
            out
        }
        fn batches_settlements(&self) -> bool {
            true
        }
        async fn counters(
            &self,
            c: &[(CounterKey, Limits)],
        ) -> Result<Vec<CounterState>, BudgetError> {
            self.inner.counters(c).await
        }
        async fn set_limit(
            &self,
            s: &str,
            w: Window,
            m: Metric,
            max: Option<Decimal>,
        ) -> Result<(), BudgetError> {
            self.inner.set_limit(s, w, m, max).await
        }
        async fn raise_limit(
            &self,
            s: &str,
            w: Window,
            m: Metric,
            a: Decimal,
        ) -> Result<Decimal, BudgetError> {
            self.inner.raise_limit(s, w, m, a).await
        }
        async fn maintain(&self, now: DateTime<Utc>) -> Result<(), BudgetError> {
            self.inner.maintain(now).await
        }
        fn maintenance_interval(&self) -> Duration {
            Duration::from_secs(60)
        }
    }

    async fn every_settlement_arrives_once(fail_first: bool) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let layer = BudgetLayer::builder(Batching {
            inner: MemoryBudgetStore::new(),
            batches: batches.clone(),
            fail_first: AtomicBool::new(fail_first),
        })
        .track(Scope::User, Window::Total)
        .build()
        .unwrap();
        let shared = &layer.shared;
        let counter = CounterKey::at("user:u", Window::Total, Utc::now());
        let estimate = Usage {
            spend: Decimal::new(5, 2),
            tokens: 100,
            requests: 1,
        };
        let used = Usage {
            spend: Decimal::new(3, 2),
            tokens: 40,
            requests: 1,
        };
        for _ in 0..40 {
            let admission = Admission {
                id: Uuid::now_v7(),
                checks: vec![Check {
                    counter: counter.clone(),
                    estimate,
                    defaults: Limits::none(),
                }],
            };
            assert!(matches!(
                shared.store.admit(&admission).await.unwrap(),
                Verdict::Admitted(_)
            ));
            shared.tracker.begin();
            let job = Job {
                admission,
                used,
                who: None,
                with_record: true,
            };
            assert!(shared.queue.send(job, shared, &Handle::current()).is_none());
        }
        layer.flush().await;
        let stats = layer.stats();
        assert_eq!(
            (stats.settled, stats.pending, stats.settle_failed),
            (40, 0, 0)
        );
        let state = &shared
            .store
            .counters(&[(counter, Limits::none())])
            .await
            .unwrap()[0];
        // Each settled exactly once (the failed batch settled nothing, its retries did).
        assert_eq!(state.used.spend, Decimal::new(120, 2));
        assert_eq!((state.used.tokens, state.used.requests), (1600, 40));
        assert_eq!(state.reserved, Usage::ZERO);
        let batches = batches.lock().unwrap();
        // Fewer calls than settlements: they queued up while the task was busy.
        assert!(batches.len() < 40, "{batches:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_task_settles_what_queued_up_in_batches() {
        every_settlement_arrives_once(false).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_batch_is_retried_one_by_one() {
        every_settlement_arrives_once(true).await;
    }
}
