//! [`RedisBudgetStore`]: counters, holds and caps in Redis, one Lua script per admission.

mod call;
mod lua;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use rust_decimal::Decimal;
use uuid::Uuid;

use self::call::Call;
use self::lua::Scripts;
use super::store::{
    Admission, BudgetError, BudgetStore, CounterKey, CounterState, DEFAULT_LEASE, DEFAULT_TIMEOUT,
    Verdict, validate_limit,
};
use super::usage::{Limits, Usage};
use super::window::{Metric, Window};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "budget:";

/// Attodollars per nanodollar: the two parts money is kept in (see [`lua`]).
const PART: i128 = 1_000_000_000;
/// Lua's numbers are exact up to 2⁵³; a part must stay below it.
const MAX_PART: i128 = 1 << 53;

/// A [`BudgetStore`] over Redis (feature `redis`), for a fleet: each admission, settlement
/// and housekeeping pass is one Lua script, atomic in Redis, one round trip.
///
/// **Keys** (under a prefix, [`DEFAULT_PREFIX`]): a counter is a hash
/// `{prefix}c:{window}:{start}:{subject}` that expires when the window after it ends
/// (a balance never does); a subject's own caps `{prefix}l:{window}:{subject}`; each
/// process's holds `{prefix}h:{holder}` (one field per admitted request: the counters and
/// amounts it holds); the processes' leases the sorted set `{prefix}holders`.
///
/// **Money** is kept as two integers (nanodollars, and attodollars below them) because Lua's
/// numbers are doubles: exact to 18 decimal places and up to about nine million dollars per
/// counter. An amount with more decimal places is rounded up to the next attodollar (no
/// computed cost has more than 13).
///
/// **Leases**: every admission and housekeeping pass (each third of the lease) renews this
/// process's lease in `{prefix}holders`; housekeeping on any process releases the holds of
/// processes whose lease ran out ([`DEFAULT_LEASE`]). Scripts touch keys they compute
/// (the reaper), so the store needs a single Redis (or a one-shard setup), not Redis Cluster.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), tower_activity::budget::BudgetError> {
/// use tower_activity::budget::{BudgetLayer, RedisBudgetStore, Scope, Window};
///
/// let store = RedisBudgetStore::connect("redis://127.0.0.1:6379").await?;
/// let layer = BudgetLayer::builder(store).track(Scope::User, Window::Day).build()?;
/// # drop(layer); Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBudgetStore {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    prefix: String,
    holder: Uuid,
    lease: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for RedisBudgetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBudgetStore")
            .field("prefix", &self.prefix)
            .field("holder", &self.holder)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisBudgetStore {
    /// Connects to `url` (`redis://host:port[/db]`) with a connection that reconnects by
    /// itself, and takes a lease.
    pub async fn connect(url: &str) -> Result<Self, BudgetError> {
        let client = redis::Client::open(url).map_err(BudgetError::store)?;
        // Each call has its own timeout (`with_timeout`); the connection's would be fixed here.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None)
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(BudgetError::store)?;
        let store = RedisBudgetStore {
            conn,
            scripts: Arc::new(Scripts::new()),
            prefix: DEFAULT_PREFIX.to_owned(),
            holder: Uuid::now_v7(),
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
        };
        store.reap().await?;
        Ok(store)
    }

    /// Keeps every key under `prefix` (default [`DEFAULT_PREFIX`]): two stores with different
    /// prefixes share a server without seeing each other's budgets.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
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

    /// This process's id in `{prefix}holders`.
    pub fn holder(&self) -> Uuid {
        self.holder
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn counter_key(&self, key: &CounterKey) -> String {
        format!(
            "{}c:{}:{}:{}",
            self.prefix,
            key.window,
            key.start.timestamp(),
            key.subject
        )
    }

    fn limits_key(&self, subject: &str, window: Window) -> String {
        format!("{}l:{window}:{subject}", self.prefix)
    }

    fn holds_key(&self, holder: Uuid) -> String {
        format!("{}h:{}", self.prefix, holder.simple())
    }

    fn holders_key(&self) -> String {
        format!("{}holders", self.prefix)
    }

    /// Runs a call within the timeout.
    async fn invoke<T: redis::FromRedisValue>(&self, call: &Call<'_>) -> Result<T, BudgetError> {
        let mut conn = self.conn.clone();
        let invocation = call.invocation();
        tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| BudgetError::store(format!("no answer within {:?}", self.timeout)))?
            .map_err(BudgetError::store)
    }

    /// Adds the counters' keys and arguments of `checks` to `call`.
    fn checks<'a>(
        &self,
        call: &mut Call<'_>,
        checks: impl Iterator<Item = (&'a CounterKey, Usage, &'a Limits)> + Clone,
    ) -> Result<(), BudgetError> {
        for (key, ..) in checks.clone() {
            call.key(self.counter_key(key));
        }
        for (key, ..) in checks.clone() {
            call.key(self.limits_key(&key.subject, key.window));
        }
        for (key, estimate, defaults) in checks {
            let (h, l) = split(estimate.spend)?;
            call.arg(h)
                .arg(l)
                .arg(estimate.tokens)
                .arg(estimate.requests);
            match defaults.spend {
                Some(max) => {
                    let (h, l) = split(max)?;
                    call.arg(h).arg(l);
                }
                None => {
                    call.arg("").arg("");
                }
            }
            for metric in [Metric::Tokens, Metric::Requests] {
                call.arg(
                    defaults
                        .get(metric)
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                );
            }
            call.arg(expiry(key));
        }
        Ok(())
    }

    /// The settlement script's call for `admission`.
    fn settle_call(&self, admission: &Admission, used: &Usage) -> Result<Call<'_>, BudgetError> {
        let checks = admission
            .checks
            .iter()
            .map(|c| (&c.counter, c.estimate, &c.defaults));
        let (h, l) = split(used.spend)?;
        let mut call = Call::new(&self.scripts.settle);
        call.arg(admission.checks.len())
            .arg(admission.id.simple())
            .arg(h)
            .arg(l)
            .arg(used.tokens)
            .arg(used.requests);
        self.checks(&mut call, checks)?;
        call.key(self.holds_key(self.holder));
        Ok(call)
    }

    /// Renews this process's lease and releases the holds of processes whose lease ran out.
    async fn reap(&self) -> Result<(), BudgetError> {
        let mut call = Call::new(&self.scripts.reap);
        call.key(self.holders_key())
            .arg(format!("{}h:", self.prefix))
            .arg(self.holder.simple())
            .arg(self.lease.as_millis() as u64);
        let _released: i64 = self.invoke(&call).await?;
        Ok(())
    }
}

/// The counters of `admission` with their default caps, as [`decode`] reads them.
fn keys_of(admission: &Admission) -> Vec<(&CounterKey, &Limits)> {
    admission
        .checks
        .iter()
        .map(|c| (&c.counter, &c.defaults))
        .collect()
}

/// A counter's expiry: when the window after it ends (Unix seconds); 0 (never) for a balance.
fn expiry(key: &CounterKey) -> i64 {
    match key.end() {
        Some(end) => (end + (end - key.start)).timestamp(),
        None => 0,
    }
}

/// An amount of money as (nanodollars, attodollars below them), rounded up to an attodollar.
fn split(d: Decimal) -> Result<(i64, i64), BudgetError> {
    let out_of_range = || BudgetError::OutOfRange {
        value: d,
        reason: "Redis keeps 0 to about $9,007,199 per amount, to 18 decimal places",
    };
    if d.is_sign_negative() && !d.is_zero() {
        return Err(out_of_range());
    }
    let atto = d
        .checked_mul(Decimal::from(1_000_000_000_000_000_000i64))
        .ok_or_else(out_of_range)?
        .ceil()
        .mantissa();
    let (h, l) = (atto / PART, atto % PART);
    if h >= MAX_PART {
        return Err(out_of_range());
    }
    Ok((h as i64, l as i64))
}

/// The amount of (nanodollars, attodollars) as exact decimal strings.
fn join(h: &str, l: &str) -> Result<Decimal, BudgetError> {
    let part = |s: &str| s.parse::<i128>().map_err(BudgetError::store);
    let atto = part(h)? * PART + part(l)?;
    Ok(Decimal::from_i128_with_scale(atto, 18).normalize())
}

/// The twelve strings of each counter in a script's answer.
fn decode(
    keys: &[(&CounterKey, &Limits)],
    values: &[String],
) -> Result<Vec<CounterState>, BudgetError> {
    if values.len() != keys.len() * 12 {
        return Err(BudgetError::store(format!(
            "the budget script answered {} values for {} counters",
            values.len(),
            keys.len()
        )));
    }
    let count = |s: &str| s.parse::<u64>().map_err(BudgetError::store);
    let cap = |s: &str| -> Result<Option<Decimal>, BudgetError> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse::<Decimal>().map(Some).map_err(BudgetError::store)
        }
    };
    keys.iter()
        .zip(values.chunks(12))
        .map(|((key, _), v)| {
            Ok(CounterState {
                counter: (*key).clone(),
                used: Usage {
                    spend: join(&v[0], &v[1])?,
                    tokens: count(&v[2])?,
                    requests: count(&v[3])?,
                },
                reserved: Usage {
                    spend: join(&v[4], &v[5])?,
                    tokens: count(&v[6])?,
                    requests: count(&v[7])?,
                },
                limits: Limits {
                    spend: if v[8].is_empty() {
                        None
                    } else {
                        Some(join(&v[8], &v[9])?)
                    },
                    tokens: cap(&v[10])?,
                    requests: cap(&v[11])?,
                },
            })
        })
        .collect()
}

#[async_trait]
impl BudgetStore for RedisBudgetStore {
    async fn admit(&self, admission: &Admission) -> Result<Verdict, BudgetError> {
        let checks = admission
            .checks
            .iter()
            .map(|c| (&c.counter, c.estimate, &c.defaults));
        let mut call = Call::new(&self.scripts.admit);
        call.arg(admission.checks.len())
            .arg(admission.id.simple())
            .arg(self.holder.simple())
            .arg(self.lease.as_millis() as u64);
        self.checks(&mut call, checks)?;
        call.key(self.holds_key(self.holder))
            .key(self.holders_key());
        let values: Vec<String> = self.invoke(&call).await?;
        let Some((admitted, values)) = values.split_first() else {
            return Err(BudgetError::store("the admission script answered nothing"));
        };
        let mut states = decode(&keys_of(admission), values)?;
        if admitted == "1" {
            for (state, check) in states.iter_mut().zip(&admission.checks) {
                state.reserved = state.reserved.plus(&check.estimate);
            }
            Ok(Verdict::Admitted(states))
        } else {
            Ok(Verdict::Refused(states))
        }
    }

    async fn settle(
        &self,
        admission: &Admission,
        used: &Usage,
    ) -> Result<Vec<CounterState>, BudgetError> {
        let call = self.settle_call(admission, used)?;
        let values: Vec<String> = self.invoke(&call).await?;
        decode(&keys_of(admission), &values)
    }

    /// One pipeline: one round trip for the whole batch.
    async fn settle_many(
        &self,
        batch: &[(&Admission, &Usage)],
    ) -> Vec<Result<Vec<CounterState>, BudgetError>> {
        let calls: Vec<Result<Call<'_>, BudgetError>> = batch
            .iter()
            .map(|(admission, used)| self.settle_call(admission, used))
            .collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for call in calls.iter().flatten() {
            pipe.add_command(call.command());
        }
        let answers: Result<Vec<redis::RedisResult<Vec<String>>>, String> = if pipe.is_empty() {
            Ok(Vec::new())
        } else {
            let mut conn = self.conn.clone();
            match tokio::time::timeout(self.timeout, pipe.query_async(&mut conn)).await {
                Ok(Ok(answers)) => Ok(answers),
                Ok(Err(e)) => Err(format!("budget settlement pipeline failed: {e}")),
                Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            }
        };
        let mut answers = match answers {
            Ok(answers) => answers.into_iter(),
            Err(e) => {
                return calls
                    .into_iter()
                    .map(|call| call.and_then(|_| Err(BudgetError::store(e.clone()))))
                    .collect();
            }
        };
        let mut out = Vec::with_capacity(batch.len());
        for ((admission, _), call) in batch.iter().zip(calls) {
            let values = match call {
                Err(e) => Err(e),
                Ok(call) => match answers.next() {
                    Some(Ok(values)) => Ok(values),
                    // The server lost its scripts (a restart): this one did not run. On its
                    // own, the call loads the script first.
                    Some(Err(e))
                        if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        self.invoke(&call).await
                    }
                    Some(Err(e)) => Err(BudgetError::store(e)),
                    None => Err(BudgetError::store(
                        "the settlement pipeline answered fewer replies than it was sent",
                    )),
                },
            };
            out.push(values.and_then(|v| decode(&keys_of(admission), &v)));
        }
        out
    }

    fn batches_settlements(&self) -> bool {
        true
    }

    async fn counters(
        &self,
        counters: &[(CounterKey, Limits)],
    ) -> Result<Vec<CounterState>, BudgetError> {
        let mut call = Call::new(&self.scripts.read);
        call.arg(counters.len());
        self.checks(&mut call, counters.iter().map(|(k, d)| (k, Usage::ZERO, d)))?;
        let values: Vec<String> = self.invoke(&call).await?;
        let keys: Vec<(&CounterKey, &Limits)> = counters.iter().map(|(k, d)| (k, d)).collect();
        decode(&keys, &values)
    }

    async fn set_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        max: Option<Decimal>,
    ) -> Result<(), BudgetError> {
        let key = self.limits_key(subject, window);
        let cmd = match (metric, max) {
            (_, Some(max)) => {
                validate_limit(window, metric, max)?;
                let mut cmd = redis::cmd("HSET");
                cmd.arg(&key);
                if metric == Metric::Spend {
                    let (h, l) = split(max)?;
                    cmd.arg("mh")
                        .arg(h.to_string())
                        .arg("ml")
                        .arg(l.to_string());
                } else {
                    cmd.arg(field(metric)).arg(max.to_string());
                }
                cmd
            }
            (Metric::Spend, None) => {
                let mut cmd = redis::cmd("HDEL");
                cmd.arg(&key).arg("mh").arg("ml");
                cmd
            }
            (_, None) => {
                let mut cmd = redis::cmd("HDEL");
                cmd.arg(&key).arg(field(metric));
                cmd
            }
        };
        let mut conn = self.conn.clone();
        let run = cmd.query_async::<i64>(&mut conn);
        tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| BudgetError::store(format!("no answer within {:?}", self.timeout)))?
            .map_err(BudgetError::store)?;
        Ok(())
    }

    async fn raise_limit(
        &self,
        subject: &str,
        window: Window,
        metric: Metric,
        amount: Decimal,
    ) -> Result<Decimal, BudgetError> {
        let sign = if amount.is_sign_negative() { "-" } else { "+" };
        let magnitude = amount.abs();
        let mut call = Call::new(&self.scripts.raise);
        call.key(self.limits_key(subject, window))
            .arg(metric.as_str());
        if metric == Metric::Spend {
            let (h, l) = split(magnitude)?;
            call.arg(h).arg(l);
        } else {
            validate_limit(window, metric, magnitude)?;
            call.arg(magnitude).arg("0");
        }
        call.arg(sign);
        let values: Result<Vec<String>, BudgetError> = self.invoke(&call).await;
        let values = values.map_err(|e| match e {
            BudgetError::Store(cause) if cause.to_string().contains("below zero") => {
                BudgetError::InvalidLimit {
                    metric,
                    window,
                    value: amount,
                    reason: "would take the cap below zero",
                }
            }
            other => other,
        })?;
        match values.as_slice() {
            [h, l] if metric == Metric::Spend => join(h, l),
            [v, _] => v.parse().map_err(BudgetError::store),
            _ => Err(BudgetError::store("the raise script answered nothing")),
        }
    }

    async fn maintain(&self, _now: DateTime<Utc>) -> Result<(), BudgetError> {
        // Redis's clock decides leases; old windows expire by themselves.
        self.reap().await
    }

    fn maintenance_interval(&self) -> Duration {
        self.lease / 3
    }
}

/// The caps hash field of a count metric.
fn field(metric: Metric) -> &'static str {
    match metric {
        Metric::Spend => "mh",
        Metric::Tokens => "mt",
        Metric::Requests => "mr",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_splits_into_exact_parts() {
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(split(d("1.5")).unwrap(), (1_500_000_000, 0));
        assert_eq!(split(d("0.000000000000000001")).unwrap(), (0, 1));
        assert_eq!(split(d("0.0000000046875")).unwrap(), (4, 687_500_000));
        // Beyond 18 places: rounded up, never down.
        assert_eq!(split(d("0.0000000000000000001")).unwrap(), (0, 1));
        assert_eq!(join("4", "687500000").unwrap(), d("0.0000000046875"));
        assert!(split(d("-1")).is_err());
        assert!(split(d("10000000")).is_err(), "beyond 2^53 nanodollars");
        assert_eq!(split(d("9000000")).unwrap().0, 9_000_000_000_000_000);
    }
}
