//! [`MemoryBudgetStore`]: counters in one process's memory, behind one mutex.

use std::collections::HashMap;
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
    limits: HashMap<(String, Window), Limits>,
    reservations: HashMap<Uuid, Vec<(CounterKey, Usage)>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    used: Usage,
    reserved: Usage,
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
}

impl State {
    fn state(&self, key: &CounterKey, defaults: &Limits) -> CounterState {
        let counter = self.counters.get(key).copied().unwrap_or_default();
        let stored = self
            .limits
            .get(&(key.subject.clone(), key.window))
            .copied()
            .unwrap_or_default();
        CounterState {
            counter: key.clone(),
            used: counter.used,
            reserved: counter.reserved,
            limits: defaults.overridden_by(&stored),
        }
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
            let counter = state.counters.entry(check.counter.clone()).or_default();
            counter.reserved = counter.reserved.plus(&check.estimate);
            s.reserved = counter.reserved;
        }
        let held = admission
            .checks
            .iter()
            .map(|c| (c.counter.clone(), c.estimate))
            .collect();
        state.reservations.insert(admission.id, held);
        Ok(Verdict::Admitted(states))
    }

    async fn settle(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Result<Vec<CounterState>, BudgetError> {
        let mut state = self.lock();
        let held = state.reservations.remove(&admission.id).unwrap_or_default();
        let mut out = Vec::with_capacity(admission.checks.len());
        for check in &admission.checks {
            let counter = state.counters.entry(check.counter.clone()).or_default();
            if let Some((_, reserved)) = held.iter().find(|(k, _)| *k == check.counter) {
                counter.reserved = counter.reserved.minus(reserved);
            }
            counter.used = counter.used.plus(used);
            out.push(state.state(&check.counter, &check.defaults));
        }
        Ok(out)
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
        let mut state = self.lock();
        let key = (subject.to_owned(), window);
        let limits = state.limits.entry(key.clone()).or_default();
        *limits = limits.with(metric, max);
        if limits.is_empty() {
            state.limits.remove(&key);
        }
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
        let limits = state
            .limits
            .entry((subject.to_owned(), window))
            .or_default();
        let cap = limits.get(metric).unwrap_or_default() + amount;
        validate_limit(window, metric, cap)?;
        *limits = limits.with(metric, Some(cap));
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
