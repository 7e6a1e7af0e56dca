//! [`MemoryBudgetStore`]: counters in one process's memory, behind one mutex.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::store::{
    Admission, BudgetError, BudgetStore, CounterKey, CounterState, Verdict, expired, validate_limit,
};
use super::usage::{Limits, Usage};
use super::window::{Metric, Window};

/// Budgets for one process: every admission and settlement takes one short lock, so they
/// are exact under any concurrency. Nothing survives the process (nor needs a lease: the
/// reservations die with it).
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
    counters: HashMap<CounterKey, Counter>,
    /// Each subject's own caps, per window ([`slot`]); looked up by `&str`, no key is built.
    limits: HashMap<String, [Limits; Window::ALL.len()]>,
    /// The admissions not settled yet (settlement takes each check's estimate back).
    reservations: HashSet<Uuid>,
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

    /// Settlement under the lock (it never waits on anything else, so it needs no task).
    fn settle_locked(&self, admission: &Admission, used: &Usage) -> Vec<CounterState> {
        let mut state = self.lock();
        let held = state.reservations.remove(&admission.id);
        let mut out = Vec::with_capacity(admission.checks.len());
        for check in &admission.checks {
            state.update(&check.counter, |counter| {
                if held {
                    counter.reserved = counter.reserved.minus(&check.estimate);
                }
                counter.used = counter.used.plus(used);
            });
            out.push(state.state(&check.counter, &check.defaults));
        }
        out
    }
}

impl State {
    fn state(&self, key: &CounterKey, defaults: &Limits) -> CounterState {
        let counter = self.counters.get(key).copied().unwrap_or_default();
        let stored = self
            .limits
            .get(key.subject.as_str())
            .map(|l| l[slot(key.window)])
            .unwrap_or_default();
        CounterState {
            counter: key.clone(),
            used: counter.used,
            reserved: counter.reserved,
            limits: defaults.overridden_by(&stored),
        }
    }

    /// Changes the counter of `key` with `f`, making it empty first when missing (the key
    /// is copied only then).
    fn update(&mut self, key: &CounterKey, f: impl FnOnce(&mut Counter)) {
        match self.counters.get_mut(key) {
            Some(counter) => f(counter),
            None => f(self.counters.entry(key.clone()).or_default()),
        }
    }

    /// Changes `subject`'s own caps over `window` with `f`; returns them afterwards.
    fn update_limits(
        &mut self,
        subject: &str,
        window: Window,
        f: impl FnOnce(&mut Limits),
    ) -> Limits {
        let all = match self.limits.get_mut(subject) {
            Some(all) => all,
            None => self.limits.entry(subject.to_owned()).or_default(),
        };
        let limits = &mut all[slot(window)];
        f(limits);
        let out = *limits;
        if all.iter().all(Limits::is_empty) {
            self.limits.remove(subject);
        }
        out
    }
}

#[async_trait]
impl BudgetStore for MemoryBudgetStore {
    async fn admit(&self, admission: &Admission) -> Result<Verdict, BudgetError> {
        let mut state = self.lock();
        let mut states: Vec<CounterState> = admission
            .checks
            .iter()
            .map(|c| state.state(&c.counter, &c.defaults))
            .collect();
        let fits = admission
            .checks
            .iter()
            .zip(&states)
            .all(|(c, s)| s.limits.admit(&s.used, &s.reserved, &c.estimate));
        if !fits {
            return Ok(Verdict::Refused(states));
        }
        for (check, s) in admission.checks.iter().zip(&mut states) {
            state.update(&check.counter, |counter| {
                counter.reserved = counter.reserved.plus(&check.estimate);
                s.reserved = counter.reserved;
            });
        }
        state.reservations.insert(admission.id);
        Ok(Verdict::Admitted(states))
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
            .limits
            .get(subject)
            .and_then(|all| all[slot(window)].get(metric));
        let cap = current.unwrap_or_default() + amount;
        validate_limit(window, metric, cap)?;
        state.update_limits(subject, window, |l| *l = l.with(metric, Some(cap)));
        Ok(cap)
    }

    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), BudgetError> {
        self.lock()
            .counters
            .retain(|key, c| c.reserved != Usage::ZERO || !expired(key, now));
        Ok(())
    }

    fn maintenance_interval(&self) -> Duration {
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::store::Check;

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
        assert!(store.lock().limits.is_empty());
    }
}
