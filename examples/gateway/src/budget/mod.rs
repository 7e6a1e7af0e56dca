//! Spend control in the gateway: credits, limits and the admin API, on
//! [`BudgetLayer`].
//!
//! Every registered user gets `INITIAL_CREDITS` (decimal USD, default `1.00`): a balance the
//! exact cost of each request is deducted from when its record is made. A request whose
//! upper estimate the balance cannot cover is answered `402` (`insufficient_credits`, in the
//! API's own error shape) and never sent upstream. Besides the balance, each user may have
//! four limits ([`limits::Limit`]): `daily_spend`, `monthly_spend` (USD), `requests_per_minute`
//! and `tokens_per_day`; reaching one is a `429` with `retry-after` and `x-ratelimit-*`.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /user/credits` | key | `{"balance", "reserved", "spent_today", "spent_this_month", "limits", "usage"}` ([`credits`]) |
//! | `PUT /user/limits` | key | lower one's own limits ([`limits`]) |
//! | `POST /admin/users/{user_id}/credits` `{"amount"}` | admin | a top-up → `{"balance"}` ([`admin`]) |
//! | `PUT /admin/users/{user_id}/limits` | admin | set or remove limits ([`admin`]) |
//!
//! The admin routes exist only when `ADMIN_TOKEN` is set (`Authorization: Bearer <token>`).
//!
//! **Where the counters live**: with the database (`DATABASE_URL`): PostgreSQL keeps them in
//! its own tables (one statement per admission, exact across processes); SQLite and memory
//! keep them in the process ([`ledger`]: SQLite persists grants and limits, and rebuilds the
//! spent amounts from the activity log at startup); `BUDGET_STORE=redis://…` puts them in Redis
//! for several gateways sharing one budget.

pub mod admin;
pub mod credits;
pub mod ledger;
pub mod limits;

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tower_activity::EventRecorder;
use tower_activity::budget::{
    BudgetError, BudgetLayer, BudgetLayerBuilder, BudgetStore, CounterState, DEFAULT_TIMEOUT,
    MemoryBudgetStore, RedisBudgetStore, Scope, Window,
};
use tower_activity::pricing::SharedPrices;

use crate::config::var;

/// The default of `INITIAL_CREDITS`: one US dollar.
pub const DEFAULT_INITIAL_CREDITS: Decimal = Decimal::ONE;

/// What the environment says about spend control.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `INITIAL_CREDITS` | `1.00` | USD granted to each new user (`0` grants nothing: every request is a `402` until a top-up) |
/// | `ADMIN_TOKEN` | none | enables `/admin/*` with `Authorization: Bearer <token>`; without it the admin API does not exist |
/// | `BUDGET_STORE` | the database's | `redis://host:port[/db]`: counters in Redis, shared by several gateways |
/// | `BUDGET_DEFAULT_OUTPUT_TOKENS` | `4096` | output tokens reserved for a request that states no limit (`max_tokens` …); such a request may cost more than it reserved, so a balance or limit can be passed by at most the excess of the requests in flight (see [`BudgetLayerBuilder::default_output_tokens`](tower_activity::budget::BudgetLayerBuilder::default_output_tokens)) |
/// | `BUDGET_TIMEOUT_MS` | `2000` | how long one call to PostgreSQL's or Redis's budget store may take; past it the request is a `503 budget_unavailable` (the gateway fails closed) |
#[derive(Clone)]
pub struct BudgetConfig {
    /// Credits granted at registration.
    pub initial_credits: Decimal,
    /// The admin API's bearer token.
    pub admin_token: Option<String>,
    /// A Redis URL for the counters (else the database's store).
    pub store_url: Option<String>,
    /// How long one call to a shared store (PostgreSQL, Redis) may take before the request
    /// is answered `503` (the gateway fails closed: credits are money).
    pub timeout: Duration,
    /// Output tokens reserved for a request that states no output limit.
    pub default_output_tokens: u64,
}

impl std::fmt::Debug for BudgetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetConfig")
            .field("initial_credits", &self.initial_credits)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("store_url", &self.store_url)
            .field("timeout", &self.timeout)
            .field("default_output_tokens", &self.default_output_tokens)
            .finish()
    }
}

impl Default for BudgetConfig {
    /// `1.00` USD of credits, no admin API, the database's store.
    fn default() -> Self {
        BudgetConfig {
            initial_credits: DEFAULT_INITIAL_CREDITS,
            admin_token: None,
            store_url: None,
            timeout: DEFAULT_TIMEOUT,
            default_output_tokens: BudgetLayerBuilder::DEFAULT_OUTPUT_TOKENS,
        }
    }
}

impl BudgetConfig {
    /// The defaults: `1.00` USD of credits, no admin API, the database's store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults with `1000.00` USD of credits: what tests start from, so that only a test
    /// about credits runs out of them (set `initial_credits` to test that).
    pub fn for_tests() -> Self {
        BudgetConfig {
            initial_credits: Decimal::new(1000, 0),
            ..Self::default()
        }
    }

    /// Reads `INITIAL_CREDITS`, `ADMIN_TOKEN`, `BUDGET_STORE`, `BUDGET_TIMEOUT_MS` and
    /// `BUDGET_DEFAULT_OUTPUT_TOKENS`; `Err` names the variable.
    pub fn from_env() -> Result<Self, String> {
        let initial_credits = match var("INITIAL_CREDITS")? {
            None => DEFAULT_INITIAL_CREDITS,
            Some(v) => parse_credits(&v)?,
        };
        let admin_token = var("ADMIN_TOKEN")?;
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(
                "ADMIN_TOKEN must be at least 16 characters (it guards every user's credits)"
                    .into(),
            );
        }
        let store_url = var("BUDGET_STORE")?;
        if let Some(url) = &store_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(format!(
                "BUDGET_STORE must be a Redis URL like redis://127.0.0.1:6379, got {url:?} \
                 (leave it unset to keep the counters with DATABASE_URL)"
            ));
        }
        let timeout = match var("BUDGET_TIMEOUT_MS")? {
            None => DEFAULT_TIMEOUT,
            Some(v) => {
                Duration::from_millis(v.parse().ok().filter(|ms| *ms >= 1).ok_or_else(|| {
                    format!(
                        "BUDGET_TIMEOUT_MS must be a whole number of milliseconds from 1, got {v:?}"
                    )
                })?)
            }
        };
        let default_output_tokens = match var("BUDGET_DEFAULT_OUTPUT_TOKENS")? {
            None => BudgetLayerBuilder::DEFAULT_OUTPUT_TOKENS,
            Some(v) => v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                format!("BUDGET_DEFAULT_OUTPUT_TOKENS must be a whole number of tokens from 1, got {v:?}")
            })?,
        };
        Ok(BudgetConfig {
            initial_credits,
            admin_token,
            store_url,
            timeout,
            default_output_tokens,
        })
    }
}

/// `INITIAL_CREDITS`: a non-negative decimal amount of USD.
fn parse_credits(v: &str) -> Result<Decimal, String> {
    let amount: Decimal = v.parse().map_err(|_| {
        format!("INITIAL_CREDITS must be a decimal amount of USD like 1.00, got {v:?}")
    })?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(format!("INITIAL_CREDITS must not be negative, got {v:?}"));
    }
    Ok(amount)
}

/// The subject of a user's counters and balance (`user:{id}`).
pub fn subject(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The gateway's spend control: the layer on the LLM routes, its store, and the settings the
/// handlers need.
#[derive(Clone)]
pub struct Budget {
    /// The layer (between the session attribution and the activity layer).
    pub layer: BudgetLayer,
    /// Where counters, balances and limits are.
    pub store: Arc<dyn BudgetStore>,
    /// Credits granted at registration.
    pub initial_credits: Decimal,
    /// The admin API's token, if it is enabled.
    pub admin_token: Option<Arc<str>>,
    /// Serialises limit edits in this process ([`limits::apply`]).
    pub(crate) edits: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("initial_credits", &self.initial_credits)
            .field("admin", &self.admin_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// The layer over `store`: a balance per user, and their day, month and minute counters
    /// (caps come from each user's own limits in the store). Events (refusals, thresholds)
    /// go to `events`; estimates are priced with `prices`, the activity layer's table.
    pub fn new(
        config: &BudgetConfig,
        store: Arc<dyn BudgetStore>,
        events: EventRecorder,
        prices: SharedPrices,
    ) -> Result<Budget, String> {
        let layer = BudgetLayer::builder_shared(store.clone())
            .prices(prices)
            .default_output_tokens(config.default_output_tokens)
            .credits(Scope::User)
            .track(Scope::User, Window::Day)
            .track(Scope::User, Window::Month)
            .track(Scope::User, Window::Minute)
            // Credits are money: a store that cannot be asked refuses (503) rather than let
            // requests through unchecked, whose settlements would then be lost too.
            .fail_closed(true)
            .events(events)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Budget {
            layer,
            store,
            initial_credits: config.initial_credits,
            admin_token: config.admin_token.as_deref().map(Arc::from),
            edits: Arc::default(),
        })
    }

    /// Grants the initial credits to a new user; returns the amount.
    pub async fn grant_initial(&self, user_id: &str) -> Result<Decimal, BudgetError> {
        self.store
            .raise_limit(
                &subject(user_id),
                Window::Total,
                tower_activity::budget::Metric::Spend,
                self.initial_credits,
            )
            .await?;
        Ok(self.initial_credits)
    }

    /// The user's counters in the layer's windows (balance, day, month, minute).
    pub async fn counters(&self, user_id: &str) -> Result<Vec<CounterState>, BudgetError> {
        self.layer.counters(&Scope::User, user_id).await
    }
}

/// Opens the Redis store `BUDGET_STORE` names (its keys under the default prefix), each
/// call limited to `timeout`.
pub async fn open_redis(url: &str, timeout: Duration) -> Result<Arc<dyn BudgetStore>, String> {
    let store = RedisBudgetStore::connect(url)
        .await
        .map_err(|e| format!("cannot open BUDGET_STORE: {e}; is Redis running there?"))?
        .with_timeout(timeout);
    Ok(Arc::new(store))
}

/// A store in this process's memory (`DATABASE_URL=memory:` and `noop:`).
pub fn memory_store() -> Arc<dyn BudgetStore> {
    Arc::new(MemoryBudgetStore::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grant_is_one_dollar() {
        assert_eq!(BudgetConfig::default().initial_credits, Decimal::ONE);
        assert_eq!(BudgetConfig::default().timeout, DEFAULT_TIMEOUT);
        assert_eq!(BudgetConfig::default().default_output_tokens, 4096);
        assert!(BudgetConfig::default().admin_token.is_none());
    }

    #[test]
    fn credits_are_decimal_and_not_negative() {
        assert_eq!(parse_credits("2.50").unwrap(), Decimal::new(250, 2));
        assert_eq!(parse_credits("0").unwrap(), Decimal::ZERO);
        let e = parse_credits("-1").unwrap_err();
        assert!(
            e.contains("INITIAL_CREDITS") && e.contains("negative"),
            "{e}"
        );
        let e = parse_credits("lots").unwrap_err();
        assert!(
            e.contains("INITIAL_CREDITS") && e.contains("\"lots\""),
            "{e}"
        );
    }
}
