//! [`PostgresBudgetStore`]: counters, holds and caps in PostgreSQL, shared by a fleet.

mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use uuid::Uuid;

use self::sql::Statements;
use super::store::{
    Admission, BudgetError, BudgetStore, CounterKey, CounterState, DEFAULT_LEASE, DEFAULT_TIMEOUT,
    Verdict, validate_limit,
};
use super::usage::{Limits, Usage};
use super::window::{Metric, Window};
use crate::sink::TableNames;

/// How often a statement that lost a deadlock or serialization race is tried again.
const RACE_ATTEMPTS: u32 = 3;

/// A [`BudgetStore`] over PostgreSQL (feature `postgres`), for several processes enforcing
/// the same budgets.
///
/// **Admission is one round trip**: one statement locks the request's counter rows in key
/// order (`SELECT … FOR UPDATE`, so admissions and settlements never deadlock), reads their
/// newest values, and only when every counter fits runs the conditional
/// `UPDATE … SET held = held + estimate … RETURNING` and inserts the hold — all or nothing,
/// exact under any number of concurrent processes. (The first request of a subject in a new
/// window finds its counter row missing: the row is created and the statement asked again.)
/// Settlement is one statement too: it deletes the hold and moves its amounts from `held` to
/// the record's exact usage in `used`.
///
/// **Tables** (prefixed like the activity tables, [`TableNames`]): `budget_counters`
/// (subject, window, start; `used_*`/`held_*` — money `NUMERIC`, counts `BIGINT`),
/// `budget_limits` (a subject's own caps), `budget_holds` (one row per reserved counter, with
/// the process that holds it), `budget_holders` (each process's lease).
///
/// **Leases**: each store (process) renews its lease every [`maintain`](BudgetStore::maintain)
/// (a third of the lease); any process's housekeeping releases the holds of processes whose
/// lease expired ([`DEFAULT_LEASE`]), and deletes counters of windows that ended before the
/// previous one (by the database's clock).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), tower_activity::budget::BudgetError> {
/// use tower_activity::budget::{BudgetLayer, PostgresBudgetStore, Scope, Window};
///
/// let store = PostgresBudgetStore::connect("postgres://app@localhost/app").await?;
/// let layer = BudgetLayer::builder(store).track(Scope::User, Window::Day).build()?;
/// # drop(layer); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresBudgetStore {
    pool: PgPool,
    sql: Arc<Statements>,
    holder: Uuid,
    lease: Duration,
    timeout: Duration,
}

impl PostgresBudgetStore {
    /// Connects to `url` (a pool of 8 connections), creates the tables if missing and takes a
    /// lease.
    pub async fn connect(url: &str) -> Result<Self, BudgetError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(BudgetError::store)?;
        Self::from_pool(pool, TableNames::new()).await
    }

    /// A store on an existing pool (the activity sink's), with these table names; creates
    /// the tables if missing and takes a lease.
    pub async fn from_pool(pool: PgPool, names: TableNames) -> Result<Self, BudgetError> {
        let store = PostgresBudgetStore {
            pool,
            sql: Arc::new(Statements::new(&names)),
            holder: Uuid::now_v7(),
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
        };
        store.migrate().await?;
        store.renew().await?;
        Ok(store)
    }

    /// The lease of this process's holds (default [`DEFAULT_LEASE`]; at least 1 s).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// How long one call may take (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This process's id in `budget_holds.holder`.
    pub fn holder(&self) -> Uuid {
        self.holder
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the tables and indexes if missing (idempotent; concurrent starts serialise on
    /// an advisory lock).
    pub async fn migrate(&self) -> Result<(), BudgetError> {
        let mut tx = self.pool.begin().await.map_err(BudgetError::store)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tower_activity.budget'))")
            .execute(&mut *tx)
            .await
            .map_err(BudgetError::store)?;
        sqlx::raw_sql(&self.sql.schema)
            .execute(&mut *tx)
            .await
            .map_err(BudgetError::store)?;
        tx.commit().await.map_err(BudgetError::store)
    }

    async fn renew(&self) -> Result<(), BudgetError> {
        sqlx::query(&self.sql.renew)
            .bind(self.holder)
            .bind(self.lease.as_secs_f64())
            .execute(&self.pool)
            .await
            .map_err(BudgetError::store)?;
        Ok(())
    }

    /// `f` within the timeout, tried again when it lost a deadlock or serialization race.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, BudgetError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let attempts = async {
            let mut attempt = 1;
            loop {
                match f().await {
                    Err(e) if attempt < RACE_ATTEMPTS && is_race(&e) => attempt += 1,
                    other => return other.map_err(BudgetError::store),
                }
            }
        };
        tokio::time::timeout(self.timeout, attempts)
            .await
            .map_err(|_| BudgetError::store(format!("no answer within {:?}", self.timeout)))?
    }
}

/// A deadlock or serialization failure: nothing was done, the statement may simply run again.
fn is_race(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// The checks as the arrays `$1`–`$9` of the statements.
struct Arrays {
    subjects: Vec<String>,
    windows: Vec<String>,
    starts: Vec<DateTime<Utc>>,
    spend: Vec<String>,
    tokens: Vec<i64>,
    requests: Vec<i64>,
    caps: [Vec<Option<String>>; 3],
}

impl Arrays {
    fn new<'a>(
        checks: impl Iterator<Item = (&'a CounterKey, Usage, &'a Limits)>,
    ) -> Result<Self, BudgetError> {
        let mut a = Arrays {
            subjects: Vec::new(),
            windows: Vec::new(),
            starts: Vec::new(),
            spend: Vec::new(),
            tokens: Vec::new(),
            requests: Vec::new(),
            caps: Default::default(),
        };
        for (key, estimate, defaults) in checks {
            a.subjects.push(key.subject.to_string());
            a.windows.push(key.window.as_str().to_owned());
            a.starts.push(key.start);
            a.spend.push(estimate.spend.to_string());
            a.tokens.push(count(estimate.tokens)?);
            a.requests.push(count(estimate.requests)?);
            for (i, metric) in Metric::ALL.into_iter().enumerate() {
                a.caps[i].push(defaults.get(metric).map(|d| d.to_string()));
            }
        }
        Ok(a)
    }

    fn bind<'q>(
        &'q self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sql)
            .bind(&self.subjects)
            .bind(&self.windows)
            .bind(&self.starts)
            .bind(&self.spend)
            .bind(&self.tokens)
            .bind(&self.requests)
            .bind(&self.caps[0])
            .bind(&self.caps[1])
            .bind(&self.caps[2])
    }
}

/// A count as `BIGINT`.
fn count(n: u64) -> Result<i64, BudgetError> {
    i64::try_from(n).map_err(|_| BudgetError::OutOfRange {
        value: Decimal::from(n),
        reason: "PostgreSQL counts are signed 64-bit integers",
    })
}

/// One answer row: (key, complete, admitted, state).
fn decode(row: &PgRow) -> Result<(CounterKey, bool, bool, CounterState), BudgetError> {
    let text = |i: usize| -> Result<Option<Decimal>, BudgetError> {
        let s: Option<String> = row.try_get(i).map_err(BudgetError::store)?;
        s.map(|s| s.parse::<Decimal>().map_err(BudgetError::store))
            .transpose()
    };
    let int = |i: usize| -> Result<u64, BudgetError> {
        let n: Option<i64> = row.try_get(i).map_err(BudgetError::store)?;
        Ok(n.unwrap_or(0).max(0) as u64)
    };
    let window: String = row.try_get(1).map_err(BudgetError::store)?;
    let key = CounterKey {
        subject: row
            .try_get::<&str, _>(0)
            .map_err(BudgetError::store)?
            .into(),
        window: window.parse().map_err(BudgetError::store)?,
        start: row.try_get(2).map_err(BudgetError::store)?,
    };
    let complete: bool = row.try_get(3).map_err(BudgetError::store)?;
    let admitted: Option<bool> = row.try_get(4).map_err(BudgetError::store)?;
    let state = CounterState {
        counter: key.clone(),
        used: Usage {
            spend: text(5)?.unwrap_or_default(),
            tokens: int(6)?,
            requests: int(7)?,
        },
        reserved: Usage {
            spend: text(8)?.unwrap_or_default(),
            tokens: int(9)?,
            requests: int(10)?,
        },
        limits: Limits {
            spend: text(11)?,
            tokens: text(12)?,
            requests: text(13)?,
        },
    };
    Ok((key, complete, admitted.unwrap_or(false), state))
}

/// The decoded rows in the order of `keys` (the statements answer in any order).
fn in_order(
    keys: &[&CounterKey],
    rows: Vec<(CounterKey, bool, bool, CounterState)>,
) -> Result<Vec<(bool, bool, CounterState)>, BudgetError> {
    keys.iter()
        .map(|k| {
            rows.iter()
                .find(|(key, ..)| key == *k)
                .map(|(_, c, a, s)| (*c, *a, s.clone()))
                .ok_or_else(|| BudgetError::store(format!("no answer for counter {k:?}")))
        })
        .collect()
}

#[async_trait]
impl BudgetStore for PostgresBudgetStore {
    async fn admit(&self, admission: &Admission) -> Result<Verdict, BudgetError> {
        let arrays = Arrays::new(
            admission
                .checks
                .iter()
                .map(|c| (&c.counter, c.estimate, &c.defaults)),
        )?;
        let keys: Vec<&CounterKey> = admission.checks.iter().map(|c| &c.counter).collect();
        // At most twice: the second time after creating the missing counters.
        for _ in 0..2 {
            let rows = self
                .run(|| {
                    arrays
                        .bind(&self.sql.admit)
                        .bind(admission.id)
                        .bind(self.holder)
                        .fetch_all(&self.pool)
                })
                .await?;
            let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            let rows = in_order(&keys, rows)?;
            if rows.iter().all(|(complete, ..)| *complete) {
                let admitted = rows.iter().all(|(_, a, _)| *a);
                let mut states: Vec<CounterState> = rows.into_iter().map(|(.., s)| s).collect();
                if admitted {
                    for (state, check) in states.iter_mut().zip(&admission.checks) {
                        state.reserved = state.reserved.plus(&check.estimate);
                    }
                    return Ok(Verdict::Admitted(states));
                }
                return Ok(Verdict::Refused(states));
            }
            self.run(|| {
                sqlx::query(&self.sql.create_counters)
                    .bind(&arrays.subjects)
                    .bind(&arrays.windows)
                    .bind(&arrays.starts)
                    .execute(&self.pool)
            })
            .await?;
        }
        Err(BudgetError::store(
            "the counters were deleted again as soon as they were created",
        ))
    }

    async fn settle(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Result<Vec<CounterState>, BudgetError> {
        let arrays = Arrays::new(
            admission
                .checks
                .iter()
                .map(|c| (&c.counter, Usage::ZERO, &c.defaults)),
        )?;
        let (spend, tokens, requests) = (
            used.spend.to_string(),
            count(used.tokens)?,
            count(used.requests)?,
        );
        let rows = self
            .run(|| {
                arrays
                    .bind(&self.sql.settle)
                    .bind(admission.id)
                    .bind(&spend)
                    .bind(tokens)
                    .bind(requests)
                    .fetch_all(&self.pool)
            })
            .await?;
        let mut rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let missing: Vec<&CounterKey> = admission
            .checks
            .iter()
            .map(|c| &c.counter)
            .filter(|k| !rows.iter().any(|(key, ..)| key == *k))
            .collect();
        if !missing.is_empty() {
            let subjects: Vec<&str> = missing.iter().map(|k| &*k.subject).collect();
            let windows: Vec<&str> = missing.iter().map(|k| k.window.as_str()).collect();
            let starts: Vec<DateTime<Utc>> = missing.iter().map(|k| k.start).collect();
            self.run(|| {
                sqlx::query(&self.sql.settle_missing)
                    .bind(&subjects)
                    .bind(&windows)
                    .bind(&starts)
                    .bind(&spend)
                    .bind(tokens)
                    .bind(requests)
                    .execute(&self.pool)
            })
            .await?;
            let read: Vec<(CounterKey, Limits)> = admission
                .checks
                .iter()
                .filter(|c| missing.contains(&&c.counter))
                .map(|c| (c.counter.clone(), c.defaults))
                .collect();
            for state in self.counters(&read).await? {
                rows.push((state.counter.clone(), true, true, state));
            }
        }
        let keys: Vec<&CounterKey> = admission.checks.iter().map(|c| &c.counter).collect();
        Ok(in_order(&keys, rows)?
            .into_iter()
            .map(|(.., s)| s)
            .collect())
    }

    async fn counters(
        &self,
        counters: &[(CounterKey, Limits)],
    ) -> Result<Vec<CounterState>, BudgetError> {
        let arrays = Arrays::new(counters.iter().map(|(k, d)| (k, Usage::ZERO, d)))?;
        let rows = self
            .run(|| arrays.bind(&self.sql.read).fetch_all(&self.pool))
            .await?;
        let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<&CounterKey> = counters.iter().map(|(k, _)| k).collect();
        Ok(in_order(&keys, rows)?
            .into_iter()
            .map(|(.., s)| s)
            .collect())
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
        let column = column(metric);
        let max = max.map(|m| m.to_string());
        self.run(|| async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(&self.sql.set_limit[column])
                .bind(subject)
                .bind(window.as_str())
                .bind(&max)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&self.sql.drop_empty_limits)
                .bind(subject)
                .bind(window.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await
    }

    async fn raise_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        amount: Decimal,
    ) -> Result<Decimal, BudgetError> {
        let amount_text = amount.to_string();
        let cap: String = self
            .run(|| {
                sqlx::query_scalar(&self.sql.raise_limit[column(metric)])
                    .bind(subject)
                    .bind(window.as_str())
                    .bind(&amount_text)
                    .fetch_one(&self.pool)
            })
            .await?;
        let cap: Decimal = cap.parse().map_err(BudgetError::store)?;
        if let Err(e) = validate_limit(window, metric, cap) {
            // Undo: a top-up that leaves an invalid cap (a negative balance) is refused.
            let undo = (-amount).to_string();
            self.run(|| {
                sqlx::query(&self.sql.raise_limit[column(metric)])
                    .bind(subject)
                    .bind(window.as_str())
                    .bind(&undo)
                    .execute(&self.pool)
            })
            .await?;
            return Err(e);
        }
        Ok(cap)
    }

    async fn maintain(&self, _now: DateTime<Utc>) -> Result<(), BudgetError> {
        // The database's clock decides, so that processes (and tests with clocks of their
        // own) agree on what expired.
        self.renew().await?;
        self.run(|| sqlx::query(&self.sql.reap).execute(&self.pool))
            .await?;
        self.run(|| sqlx::query(&self.sql.prune).execute(&self.pool))
            .await?;
        Ok(())
    }

    fn maintenance_interval(&self) -> Duration {
        self.lease / 3
    }
}

/// The index of `metric`'s cap column.
fn column(metric: Metric) -> usize {
    Metric::ALL
        .iter()
        .position(|m| *m == metric)
        .unwrap_or_default()
}
