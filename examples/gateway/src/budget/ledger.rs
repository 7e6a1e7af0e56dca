//! [`SqliteLedger`]: the budget store of a gateway on SQLite — one process, counters in
//! memory, grants and limits in the database, spent amounts rebuilt from the activity log.
//!
//! A SQLite file serves one gateway process (see `docs/decisions.md`), so the counters need
//! no database round trip per request: [`MemoryBudgetStore`] decides every admission under
//! one lock, exactly. What must survive a restart is kept as follows:
//!
//! - **grants and limits** (credits, the four limits of both parties) are written to the
//!   `budget_limits` table before the call returns, and loaded at startup;
//! - **spend**, tokens and requests are not written at all: the ledger's invariant is that a
//!   user's settled spend equals `SUM(cost_usd)` of their activity log, so at startup each
//!   user's balance, day and month counters are rebuilt from the log itself (exact decimal
//!   text, summed in Rust). Whatever the log lost in a crash, the ledger lost too: they
//!   cannot drift apart. (The minute counters start empty.)

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Row, SqlitePool};
use tokio::sync::Mutex;
use tower_activity::budget::{
    Admission, BudgetError, BudgetStore, Check, CounterKey, CounterState, Limits,
    MemoryBudgetStore, Metric, Usage, Verdict, Window,
};

/// The table of grants and limits.
pub const LIMITS_TABLE: &str = "budget_limits";

/// A [`BudgetStore`] for a gateway on SQLite (see the module docs).
pub struct SqliteLedger {
    memory: MemoryBudgetStore,
    pool: SqlitePool,
    /// One limit change at a time, so the table and memory apply them in the same order.
    writes: Mutex<()>,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger").finish_non_exhaustive()
    }
}

impl SqliteLedger {
    /// Creates the limits table if missing, loads it, and rebuilds the counters from the
    /// activity log `log_table` as of `now`.
    pub async fn open(
        pool: SqlitePool,
        log_table: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Self>, BudgetError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {LIMITS_TABLE} (subject TEXT NOT NULL, \
             period TEXT NOT NULL, metric TEXT NOT NULL, max TEXT NOT NULL, \
             PRIMARY KEY (subject, period, metric))"
        ))
        .execute(&pool)
        .await
        .map_err(BudgetError::store)?;
        let ledger = SqliteLedger {
            memory: MemoryBudgetStore::new(),
            pool,
            writes: Mutex::new(()),
        };
        ledger.load_limits().await?;
        ledger.rebuild(log_table, now).await?;
        Ok(Arc::new(ledger))
    }

    async fn load_limits(&self) -> Result<(), BudgetError> {
        let rows = sqlx::query(&format!(
            "SELECT subject, period, metric, max FROM {LIMITS_TABLE}"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(BudgetError::store)?;
        for row in rows {
            let (subject, window, metric, max): (String, String, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let corrupt = |what: &str| {
                BudgetError::store(format!(
                    "{LIMITS_TABLE} row of {subject}: {what} ({window} {metric} {max})"
                ))
            };
            let window: Window = window.parse().map_err(|_| corrupt("unknown window"))?;
            let metric: Metric = metric.parse().map_err(|_| corrupt("unknown metric"))?;
            let max: Decimal = max.parse().map_err(|_| corrupt("not a decimal"))?;
            self.memory
                .set_limit(&subject, window, metric, Some(max))
                .await?;
        }
        Ok(())
    }

    /// Each user's requests in the log, grouped by cost so that the sum is exact: `cost ×
    /// count` per group, added in Rust.
    async fn rebuild(&self, log_table: &str, now: DateTime<Utc>) -> Result<(), BudgetError> {
        let day = Window::Day.start(now).timestamp_micros();
        let month = Window::Month.start(now).timestamp_micros();
        let rows = sqlx::query(&format!(
            "SELECT user_id, cost_usd, timestamp >= ?1 AS today, timestamp >= ?2 AS this_month, \
             COUNT(*), SUM(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)) \
             FROM {log_table} WHERE kind = 'request' AND user_id IS NOT NULL \
             GROUP BY 1, 2, 3, 4"
        ))
        .bind(day)
        .bind(month)
        .fetch_all(&self.pool)
        .await
        .map_err(BudgetError::store)?;
        for row in rows {
            let user: String = row.get(0);
            let cost: Option<String> = row.get(1);
            let today = row.get::<i64, _>(2) != 0;
            let this_month = row.get::<i64, _>(3) != 0;
            let count: i64 = row.get(4);
            let tokens: i64 = row.get::<Option<i64>, _>(5).unwrap_or(0);
            let cost = match cost {
                Some(c) => c.parse::<Decimal>().map_err(|_| {
                    BudgetError::store(format!("{log_table}: cost_usd {c:?} is not a decimal"))
                })?,
                None => Decimal::ZERO,
            };
            let used = Usage {
                spend: cost * Decimal::from(count),
                tokens: u64::try_from(tokens).unwrap_or(0),
                requests: u64::try_from(count).unwrap_or(0),
            };
            let mut windows = vec![Window::Total];
            if this_month {
                windows.push(Window::Month);
            }
            if today {
                windows.push(Window::Day);
            }
            // A settlement without a reservation adds `used` to each counter, nothing else.
            let restore = Admission {
                id: uuid::Uuid::now_v7(),
                checks: windows
                    .into_iter()
                    .map(|w| Check {
                        counter: CounterKey::at(format!("user:{user}"), w, now),
                        estimate: Usage::ZERO,
                        defaults: Limits::none(),
                    })
                    .collect(),
            };
            self.memory.settle(&restore, &used).await?;
        }
        Ok(())
    }

    async fn persist(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        max: Option<Decimal>,
    ) -> Result<(), BudgetError> {
        let sql = match max {
            Some(_) => format!(
                "INSERT INTO {LIMITS_TABLE} (subject, period, metric, max) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (subject, period, metric) DO UPDATE SET max = excluded.max"
            ),
            None => format!(
                "DELETE FROM {LIMITS_TABLE} WHERE subject = ?1 AND period = ?2 AND metric = ?3"
            ),
        };
        let mut query = sqlx::query(&sql)
            .bind(subject.to_owned())
            .bind(window.as_str())
            .bind(metric.as_str());
        if let Some(max) = max {
            query = query.bind(max.to_string());
        }
        query
            .execute(&self.pool)
            .await
            .map_err(BudgetError::store)?;
        Ok(())
    }

    async fn current(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
    ) -> Result<Option<Decimal>, BudgetError> {
        let key = CounterKey::at(subject, window, Utc::now());
        let states = self.memory.counters(&[(key, Limits::none())]).await?;
        Ok(states.first().and_then(|s| s.limits.get(metric)))
    }
}

#[async_trait]
impl BudgetStore for SqliteLedger {
    async fn admit(&self, admission: &Admission) -> Result<Verdict, BudgetError> {
        self.memory.admit(admission).await
    }

    async fn settle(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Result<Vec<CounterState>, BudgetError> {
        self.memory.settle(admission, used).await
    }

    fn settle_now(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Option<Result<Vec<CounterState>, BudgetError>> {
        self.memory.settle_now(admission, used)
    }

    async fn counters(
        &self,
        counters: &[(CounterKey, Limits)],
    ) -> Result<Vec<CounterState>, BudgetError> {
        self.memory.counters(counters).await
    }

    /// Written to the table first: a limit that could not be stored is not applied.
    async fn set_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        max: Option<Decimal>,
    ) -> Result<(), BudgetError> {
        if let Some(max) = max {
            tower_activity::budget::validate_limit(window, metric, max)?;
        }
        let _write = self.writes.lock().await;
        self.persist(subject, window, metric, max).await?;
        self.memory.set_limit(subject, window, metric, max).await
    }

    /// The new cap is written to the table before memory is raised.
    async fn raise_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        amount: Decimal,
    ) -> Result<Decimal, BudgetError> {
        let _write = self.writes.lock().await;
        let cap = self
            .current(subject, window, metric)
            .await?
            .unwrap_or_default()
            + amount;
        tower_activity::budget::validate_limit(window, metric, cap)?;
        self.persist(subject, window, metric, Some(cap)).await?;
        self.memory
            .set_limit(subject, window, metric, Some(cap))
            .await?;
        Ok(cap)
    }

    async fn maintain(&self, now: DateTime<Utc>) -> Result<(), BudgetError> {
        self.memory.maintain(now).await
    }

    fn maintenance_interval(&self) -> Duration {
        self.memory.maintenance_interval()
    }
}
