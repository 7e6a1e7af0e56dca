//! [`BudgetStore`]: where counters, reservations and per-subject limits live — in memory for
//! one process, or in PostgreSQL or Redis for a fleet — and the values it trades in.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::usage::{Limits, Usage};
use super::window::{Metric, Window};

/// How long a process's reservations outlive its last lease renewal in a shared store
/// (default 30 s): a process that dies holding reservations gives them back after at most
/// this long. Stores renew every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How long one call to a shared store may take before it is given up (default 2 s): the
/// layer then fails open (or closed), a settlement retries.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// One counter: a subject's window that started at `start`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    /// The subject (`user:u_42`, `model:gpt-4o` …, see [`Scope`](super::Scope)).
    /// Shared, not copied: a request's checks of one scope and the states a store returns
    /// for them hold the same name.
    pub subject: Arc<str>,
    /// The window.
    pub window: Window,
    /// Its start ([`Window::start`]).
    pub start: DateTime<Utc>,
}

impl CounterKey {
    /// The counter of `subject`'s `window` that contains `at`.
    pub fn at(subject: impl Into<Arc<str>>, window: Window, at: DateTime<Utc>) -> Self {
        CounterKey {
            subject: subject.into(),
            window,
            start: window.start(at),
        }
    }

    /// When the window ends (`None` for [`Window::Total`]).
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.window.end(self.start)
    }
}

/// One counter an admission must fit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The counter.
    pub counter: CounterKey,
    /// What the request reserves there (its upper estimate).
    pub estimate: Usage,
    /// The caps that apply unless the store holds an override for the subject
    /// ([`BudgetStore::set_limit`]).
    pub defaults: Limits,
}

/// A request asking to be admitted: all of its checks fit and are reserved, or none is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The reservation's id (a UUID v7); settlement names it.
    pub id: Uuid,
    /// The counters it is charged to, each at most once.
    pub checks: Vec<Check>,
}

/// A counter as the store saw it, with the caps in force (override, else default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterState {
    /// The counter.
    pub counter: CounterKey,
    /// Settled so far.
    pub used: Usage,
    /// Reserved by requests still running.
    pub reserved: Usage,
    /// The caps in force.
    pub limits: Limits,
}

impl CounterState {
    /// An empty counter under `limits`.
    pub fn empty(counter: CounterKey, limits: Limits) -> Self {
        CounterState {
            counter,
            used: Usage::ZERO,
            reserved: Usage::ZERO,
            limits,
        }
    }

    /// What is left of the cap on `metric` (`None` without one; never below zero).
    pub fn remaining(&self, metric: Metric) -> Option<Decimal> {
        let max = self.limits.get(metric)?;
        let taken = self.used.get(metric) + self.reserved.get(metric);
        Some((max - taken).max(Decimal::ZERO))
    }
}

/// The store's answer to an [`Admission`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check fit and is reserved; the states include this reservation.
    Admitted(Vec<CounterState>),
    /// At least one check did not fit; nothing was reserved. The states are the ones the
    /// decision was made on, in the admission's check order.
    Refused(Vec<CounterState>),
}

/// The boxed cause carried by a [`BudgetError`].
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Why a budget store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// A limit that cannot be a cap: negative, or not a whole number of tokens or requests.
    #[error("invalid {metric} limit {value} for {window} windows: {reason}")]
    InvalidLimit {
        /// The metric.
        metric: Metric,
        /// The window.
        window: Window,
        /// The value given.
        value: Decimal,
        /// What is accepted.
        reason: &'static str,
    },
    /// An amount the store cannot hold exactly (Redis keeps 18 decimal places of a dollar and
    /// at most about nine million dollars per counter).
    #[error("amount {value} is out of the budget store's range: {reason}")]
    OutOfRange {
        /// The amount.
        value: Decimal,
        /// The store's range.
        reason: &'static str,
    },
    /// The store's backend failed (connection lost, timeout, a bad answer).
    #[error("budget store failed: {0}")]
    Store(#[source] BoxError),
}

impl BudgetError {
    /// A [`BudgetError::Store`] from any error.
    pub fn store(cause: impl Into<BoxError>) -> Self {
        BudgetError::Store(cause.into())
    }
}

/// Checks that `max` can cap `metric`.
pub fn validate_limit(window: Window, metric: Metric, max: Decimal) -> Result<(), BudgetError> {
    let reason = if max.is_sign_negative() && !max.is_zero() {
        "must not be negative"
    } else if metric != Metric::Spend && !max.fract().is_zero() {
        "must be a whole number"
    } else if metric != Metric::Spend && max > Decimal::from(i64::MAX) {
        "must fit in a signed 64-bit integer"
    } else {
        return Ok(());
    };
    Err(BudgetError::InvalidLimit {
        metric,
        window,
        value: max,
        reason,
    })
}

/// Counters, reservations and per-subject limits, shared by every process that enforces the
/// same budgets. Held as `Arc<dyn BudgetStore>`.
///
/// The contract every store keeps (and `tests/budget_stores.rs` checks on each):
/// - [`admit`](Self::admit) is atomic: all checks reserved or none, decided on the state no
///   other admission or settlement changes meanwhile — so concurrent requests never take a
///   counter past its cap by their estimates;
/// - [`settle`](Self::settle) moves a reservation's estimate out of `reserved` and adds the
///   actual usage to `used`, once; a reservation already released by its lease only adds
///   `used`;
/// - a reservation held by a process that stops renewing its lease is released after the
///   lease ([`maintain`](Self::maintain) on any live process does it).
#[async_trait]
pub trait BudgetStore: Send + Sync + 'static {
    /// Reserves every check's estimate if each fits its caps, else nothing (see the trait).
    async fn admit(&self, admission: &Admission) -> Result<Verdict, BudgetError>;

    /// Settles the reservation `admission.id` with what the request used; returns the
    /// counters afterwards, in check order. Call it once per admitted request.
    async fn settle(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Result<Vec<CounterState>, BudgetError>;

    /// Settles at once, on the caller's thread, when the store can without waiting on I/O
    /// (its counters are in this process's memory, under a short lock): the layer then needs
    /// no task per settlement. `None` (the default) when it cannot: the layer then calls
    /// [`settle`](Self::settle) on a task. The same contract as `settle`.
    fn settle_now(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Option<Result<Vec<CounterState>, BudgetError>> {
        let _ = (admission, used);
        None
    }

    /// Settles several reservations, each as [`settle`](Self::settle) would, and answers
    /// for each in order. The default settles them one after the other; a store that sends
    /// them in one round trip (Redis: one pipeline) says so with
    /// [`batches_settlements`](Self::batches_settlements).
    async fn settle_many(
        &self,
        batch: &[(&Admission, &Usage)],
    ) -> Vec<Result<Vec<CounterState>, BudgetError>> {
        let mut out = Vec::with_capacity(batch.len());
        for (admission, used) in batch {
            out.push(self.settle(admission, used).await);
        }
        out
    }

    /// Whether [`settle_many`](Self::settle_many) is one round trip however many it settles:
    /// the layer then hands its settlements to one long-lived task that sends whatever has
    /// queued up as one batch, instead of starting a task per settlement. Default `false`.
    fn batches_settlements(&self) -> bool {
        false
    }

    /// The current state of `counters` (each with its default caps); a counter that does not
    /// exist yet is empty.
    async fn counters(
        &self,
        counters: &[(CounterKey, Limits)],
    ) -> Result<Vec<CounterState>, BudgetError>;

    /// Sets (or with `None` removes) `subject`'s own cap on `metric` over `window`, which
    /// replaces the layer's default for that subject.
    async fn set_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        max: Option<Decimal>,
    ) -> Result<(), BudgetError>;

    /// Adds `amount` to `subject`'s own cap (a missing one starts at 0) and returns the new
    /// cap: a credit top-up on a [`Window::Total`] spend cap.
    async fn raise_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        amount: Decimal,
    ) -> Result<Decimal, BudgetError>;

    /// Housekeeping, called every [`maintenance_interval`](Self::maintenance_interval) by the
    /// layer: renew this process's lease, release reservations whose lease expired, delete
    /// counters of windows that ended before the previous one.
    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), BudgetError>;

    /// How often [`maintain`](Self::maintain) must run.
    fn maintenance_interval(&self) -> Duration;
}

/// Whether the counter of a window that ended is old enough to delete: its window ended
/// before the previous one did (the current and the previous window are kept).
pub fn expired(counter: &CounterKey, now: DateTime<Utc>) -> bool {
    window_expired(counter.window, counter.start, now)
}

/// [`expired`] for the counter of `window` that started at `start`, whoever's it is.
pub(super) fn window_expired(window: Window, start: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    match window.end(start) {
        Some(end) => {
            let length = end - start;
            end + length <= now
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_validated() {
        assert!(validate_limit(Window::Day, Metric::Spend, Decimal::new(5, 1)).is_ok());
        let e = validate_limit(Window::Minute, Metric::Requests, Decimal::new(15, 1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("requests limit 1.5 for minute") && e.contains("whole"),
            "{e}"
        );
        assert!(validate_limit(Window::Day, Metric::Spend, Decimal::NEGATIVE_ONE).is_err());
    }

    #[test]
    fn counters_expire_after_the_next_window() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let c = CounterKey::at("user:u", Window::Day, at("2026-01-01T12:00:00Z"));
        assert!(!expired(&c, at("2026-01-02T23:59:59Z")));
        assert!(expired(&c, at("2026-01-03T00:00:00Z")));
        let total = CounterKey::at("user:u", Window::Total, at("2026-01-01T12:00:00Z"));
        assert!(!expired(&total, at("2999-01-01T00:00:00Z")));
    }
}
