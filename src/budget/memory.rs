//! [`MemoryBudgetStore`]: counters in one process's memory, behind one mutex.

use std::collections::HashSet;
use std::hash::RandomState;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::store::{
    Admission, BudgetError, BudgetStore, Check, CounterKey, CounterState, Verdict, validate_limit,
    window_expired,
};
use super::usage::{Limits, Usage};
use super::window::{Metric, Window};

/// Budgets for one process: every admission and settlement takes one short lock, so they
/// are exact under any concurrency. Nothing survives the process (nor needs a lease: the
/// reservations die with it).
///
/// The state is one entry per subject (its own caps and its counters, a few windows each),
/// so an admission looks its subject up once however many windows it is charged to (the
/// gateway's four: the balance, day, month and minute), not once per counter and again per
/// cap.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use rust_decimal::Decimal;
/// use tower_activity::budget::{BudgetStore, MemoryBudgetStore, Metric, Window};
///
/// let store = MemoryBudgetStore::new();
/// let cap = store.raise_limit("user:u1", Window::Total, Metric::Spend, Decimal::ONE).await.unwrap();
/// assert_eq!(cap, Decimal::ONE);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryBudgetStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Each subject's caps and counters; looked up by `&str`, no key is built. SipHash (the
    /// std default): a subject can be named by the client (a model, a tag, a custom scope).
    subjects: hashbrown::HashMap<String, Subject, RandomState>,
    /// The admissions not settled yet (settlement takes each check's estimate back). Their
    /// ids are the layer's own random UUIDs, not chosen by a client: hashed with foldhash.
    reservations: HashSet<Uuid, foldhash::fast::RandomState>,
}

/// One subject's own caps, per window ([`slot`]), and its counters (one per window start).
#[derive(Debug, Default)]
struct Subject {
    limits: [Limits; Window::ALL.len()],
    counters: Vec<(Window, DateTime<Utc>, Counter)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    used: Usage,
    reserved: Usage,
}

/// A window's place in a subject's caps.
fn slot(window: Window) -> usize {
    match window {
        Window::Minute => 0,
        Window::Hour => 1,
        Window::Day => 2,
        Window::Month => 3,
        Window::Total => 4,
    }
}

impl Subject {
    fn counter(&self, key: &CounterKey) -> Counter {
        self.counters
            .iter()
            .find(|(w, start, _)| *w == key.window && *start == key.start)
            .map(|(_, _, c)| *c)
            .unwrap_or_default()
    }

    /// The counter of `key`, made empty first when missing.
    fn counter_mut(&mut self, key: &CounterKey) -> &mut Counter {
        let at = self
            .counters
            .iter()
            .position(|(w, start, _)| *w == key.window && *start == key.start);
        let at = at.unwrap_or_else(|| {
            self.counters
                .push((key.window, key.start, Counter::default()));
            self.counters.len() - 1
        });
        &mut self.counters[at].2
    }

    /// Nothing left to remember: no caps of its own, no counters.
    fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.limits.iter().all(Limits::is_empty)
    }
}

/// `key`'s state in `subject` (absent: an empty counter under the defaults).
fn state_of(subject: Option<&Subject>, key: &CounterKey, defaults: &Limits) -> CounterState {
    let (counter, stored) = match subject {
        Some(s) => (s.counter(key), s.limits[slot(key.window)]),
        None => (Counter::default(), Limits::none()),
    };
    CounterState {
        counter: key.clone(),
        used: counter.used,
        reserved: counter.reserved,
        limits: defaults.overridden_by(&stored),
    }
}

/// Whether every check fits its counter's caps (`states` in check order).
fn fits(checks: &[Check], states: &[CounterState]) -> bool {
    checks
        .iter()
        .zip(states)
        .all(|(c, s)| s.limits.admit(&s.used, &s.reserved, &c.estimate))
}

/// Reserves each check's estimate in `subject`'s counter, and writes the counter's reserved
/// total into its state.
fn reserve(subject: &mut Subject, checks: &[Check], states: &mut [CounterState]) {
    for (check, state) in checks.iter().zip(states) {
        let counter = subject.counter_mut(&check.counter);
        counter.reserved = counter.reserved.plus(&check.estimate);
        state.reserved = counter.reserved;
    }
}

/// The checks in runs of one subject each (an admission's checks of one subject are
/// usually next to each other: the layer makes them scope by scope).
fn runs(checks: &[Check]) -> impl Iterator<Item = &[Check]> {
    checks.chunk_by(|a, b| a.counter.subject == b.counter.subject)
}

impl MemoryBudgetStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a counter half-updated (every update
        // is a plain assignment), so the state stays usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admission under the lock: decided on each check's counter, then reserved in all.
    fn admit_locked(&self, admission: &Admission) -> Verdict {
        let mut state = self.lock();
        let checks = &admission.checks;
        let mut states: Vec<CounterState> = Vec::with_capacity(checks.len());
        for run in runs(checks) {
            let subject = state.subjects.get(&*run[0].counter.subject);
            states.extend(
                run.iter()
                    .map(|c| state_of(subject, &c.counter, &c.defaults)),
            );
        }
        if !fits(checks, &states) {
            return Verdict::Refused(states);
        }
        let mut at = 0;
        for run in runs(checks) {
            let subject = state.subject_mut(&run[0].counter.subject);
            reserve(subject, run, &mut states[at..at + run.len()]);
            at += run.len();
        }
        state.reservations.insert(admission.id);
        Verdict::Admitted(states)
    }

    /// Settlement under the lock (it never waits on anything else, so it needs no task).
    fn settle_locked(&self, admission: &Admission, used: &Usage) -> Vec<CounterState> {
        let mut state = self.lock();
        let held = state.reservations.remove(&admission.id);
        let mut out = Vec::with_capacity(admission.checks.len());
        for run in runs(&admission.checks) {
            let subject = state.subject_mut(&run[0].counter.subject);
            for check in run {
                let counter = subject.counter_mut(&check.counter);
                if held {
                    counter.reserved = counter.reserved.minus(&check.estimate);
                }
                counter.used = counter.used.plus(used);
                out.push(state_of(Some(subject), &check.counter, &check.defaults));
            }
        }
        out
    }
}

impl State {
    fn state(&self, key: &CounterKey, defaults: &Limits) -> CounterState {
        state_of(self.subjects.get(&*key.subject), key, defaults)
    }

    /// `subject`'s entry, made when missing: one lookup, the name copied only for a new
    /// subject (`entry_ref`).
    fn subject_mut(&mut self, subject: &str) -> &mut Subject {
        self.subjects.entry_ref(subject).or_default()
    }

    /// Changes `subject`'s own caps over `window` with `f`; returns them afterwards.
    fn update_limits(
        &mut self,
        subject: &str,
        window: Window,
        f: impl FnOnce(&mut Limits),
    ) -> Limits {
        let entry = self.subject_mut(subject);
        let limits = &mut entry.limits[slot(window)];
        f(limits);
        let out = *limits;
        if entry.is_empty() {
            self.subjects.remove(subject);
        }
        out
    }
}

#[async_trait]
impl BudgetStore for MemoryBudgetStore {
    async fn admit(&self, admission: &Admission) -> Result<Verdict, BudgetError> {
        Ok(self.admit_locked(admission))
    }

    async fn settle(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Result<Vec<CounterState>, BudgetError> {
        Ok(self.settle_locked(admission, used))
    }

    fn settle_now(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Option<Result<Vec<CounterState>, BudgetError>> {
        Some(Ok(self.settle_locked(admission, used)))
    }

    async fn counters(
        &self,
        counters: &[(CounterKey, Limits)],
    ) -> Result<Vec<CounterState>, BudgetError> {
        let state = self.lock();
        Ok(counters.iter().map(|(k, d)| state.state(k, d)).collect())
    }

    async fn set_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        max: Option<Decimal>,
    ) -> Result<(), BudgetError> {
        if let Some(max) = max {
            validate_limit(window, metric, max)?;
        }
        self.lock()
            .update_limits(subject, window, |l| *l = l.with(metric, max));
        Ok(())
    }

    async fn raise_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        amount: Decimal,
    ) -> Result<Decimal, BudgetError> {
        let mut state = self.lock();
        let current = state
            .subjects
            .get(subject)
            .and_then(|s| s.limits[slot(window)].get(metric));
        let cap = current.unwrap_or_default() + amount;
        validate_limit(window, metric, cap)?;
        state.update_limits(subject, window, |l| *l = l.with(metric, Some(cap)));
        Ok(cap)
    }

    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), BudgetError> {
        self.lock().subjects.retain(|_, subject| {
            subject.counters.retain(|(window, start, c)| {
                c.reserved != Usage::ZERO || !window_expired(*window, *start, now)
            });
            !subject.is_empty()
        });
        Ok(())
    }

    fn maintenance_interval(&self) -> Duration {
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn settles_at_once_and_frees_the_hold_once() {
        let store = MemoryBudgetStore::new();
        let cap = store
            .raise_limit("user:u", Window::Total, Metric::Spend, Decimal::ONE)
            .await
            .unwrap();
        assert_eq!(cap, Decimal::ONE);
        let estimate = Usage {
            spend: Decimal::new(4, 1),
            tokens: 10,
            requests: 1,
        };
        let admission = Admission {
            id: Uuid::now_v7(),
            checks: vec![Check {
                counter: CounterKey::at("user:u", Window::Total, Utc::now()),
                estimate,
                defaults: Limits::none(),
            }],
        };
        let Verdict::Admitted(states) = store.admit(&admission).await.unwrap() else {
            panic!("refused under its cap");
        };
        assert_eq!(states[0].reserved, estimate);
        assert_eq!(states[0].limits.spend, Some(Decimal::ONE));
        let used = Usage {
            spend: Decimal::new(1, 1),
            tokens: 4,
            requests: 1,
        };
        let after = store.settle_now(&admission, &used).unwrap().unwrap();
        assert_eq!((after[0].used, after[0].reserved), (used, Usage::ZERO));
        // A second settlement of the same id adds its usage only: the hold is gone.
        let again = store.settle(&admission, &used).await.unwrap();
        assert_eq!(again[0].used.spend, Decimal::new(2, 1));
        assert_eq!(again[0].reserved, Usage::ZERO);
        // Own caps per window: removing the last one forgets the subject.
        store
            .set_limit("user:u", Window::Total, Metric::Spend, None)
            .await
            .unwrap();
        assert!(
            store.lock().subjects["user:u"]
                .limits
                .iter()
                .all(Limits::is_empty)
        );
        store
            .maintain(Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(
            store.lock().subjects["user:u"].counters.len(),
            1,
            "a total never expires"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_subject_many_windows_and_housekeeping_forgets_it() {
        let store = MemoryBudgetStore::new();
        let now = Utc::now();
        let one = Usage {
            spend: Decimal::ZERO,
            tokens: 0,
            requests: 1,
        };
        let check = |subject: &str, window| Check {
            counter: CounterKey::at(subject, window, now),
            estimate: one,
            defaults: Limits::none().with(Metric::Requests, Some(Decimal::new(2, 0))),
        };
        // Two subjects, interleaved: each run of a subject is looked up on its own.
        let admission = |id| Admission {
            id,
            checks: vec![
                check("user:a", Window::Minute),
                check("user:a", Window::Day),
                check("user:b", Window::Minute),
                check("user:a", Window::Hour),
            ],
        };
        for _ in 0..2 {
            let Verdict::Admitted(states) = store.admit(&admission(Uuid::now_v7())).await.unwrap()
            else {
                panic!("refused under its cap");
            };
            assert_eq!(states.len(), 4);
            assert_eq!(states[0].counter.window, Window::Minute);
            assert_eq!(&*states[2].counter.subject, "user:b");
        }
        let Verdict::Refused(states) = store.admit(&admission(Uuid::now_v7())).await.unwrap()
        else {
            panic!("a third request fits a cap of two");
        };
        assert!(states.iter().all(|s| s.reserved.requests == 2));
        // An own cap on b's minute lets b through, not a.
        store
            .set_limit(
                "user:b",
                Window::Minute,
                Metric::Requests,
                Some(Decimal::new(9, 0)),
            )
            .await
            .unwrap();
        let b = Admission {
            id: Uuid::now_v7(),
            checks: vec![check("user:b", Window::Minute)],
        };
        assert!(matches!(
            store.admit(&b).await.unwrap(),
            Verdict::Admitted(_)
        ));
        let settled = store.settle_now(&b, &one).unwrap().unwrap();
        assert_eq!(
            (settled[0].used.requests, settled[0].reserved.requests),
            (1, 2)
        );
        {
            let state = store.lock();
            assert_eq!(state.subjects["user:a"].counters.len(), 3);
            assert_eq!(state.subjects["user:b"].counters.len(), 1);
        }
        // Reserved counters stay; once settled and expired, a subject without caps goes.
        let later = now + chrono::Duration::days(3);
        store.maintain(later).await.unwrap();
        assert_eq!(
            store.lock().subjects["user:a"].counters.len(),
            3,
            "still reserved"
        );
        store.lock().reservations.clear();
        for subject in ["user:a", "user:b"] {
            let mut state = store.lock();
            for (_, _, c) in &mut state.subjects.get_mut(subject).unwrap().counters {
                c.reserved = Usage::ZERO;
            }
        }
        store.maintain(later).await.unwrap();
        let state = store.lock();
        assert!(
            !state.subjects.contains_key("user:a"),
            "no caps, nothing left"
        );
        assert!(
            state.subjects["user:b"].counters.is_empty(),
            "b keeps its own cap"
        );
    }
}
