//! Spend control: budgets, rate limits and credits, enforced from the exact records.
//!
//! [`BudgetLayer`] caps **spend** (exact decimal USD), **tokens** and **requests** per
//! subject — a request's user, API key, an app tag, its model, or any key the application
//! derives ([`Scope`]) — over UTC calendar windows: minute, hour, day, month, and
//! [`Window::Total`], a balance that never resets (credits).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rust_decimal::Decimal;
//! use tower::ServiceBuilder;
//! use tower_activity::ActivityLayer;
//! use tower_activity::budget::{BudgetLayer, MemoryBudgetStore, Metric, Scope, Window};
//! use tower_activity::sink::MemorySink;
//! # let my_llm_proxy = tower::service_fn(|_req: http::Request<tower_activity::ActivityRequestBody<tower_activity::ActivityRequestBody<String>>>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//!
//! let activity = ActivityLayer::new(MemorySink::new());
//! let budget = BudgetLayer::builder(MemoryBudgetStore::new())
//!     .limit(Scope::User, Window::Day, Metric::Spend, Decimal::new(500, 2)) // $5.00 a day
//!     .limit(Scope::User, Window::Minute, Metric::Requests, Decimal::from(60))
//!     .credits(Scope::User) // a balance per user, granted with `store.raise_limit`
//!     .events(activity.events())
//!     .build()?;
//! // Outermost first: your auth (it names the user), the budget, the activity layer.
//! let service = ServiceBuilder::new().layer(budget).layer(activity).service(my_llm_proxy);
//! # drop(service); Ok(()) }
//! ```
//!
//! # Reserve, then settle
//!
//! Before the inner service is called, the layer reserves an upper estimate of the request
//! in every counter it is charged to, atomically (all or none) in the [`BudgetStore`]:
//!
//! - **input**: the request's prompt characters / 4, rounded up — the estimate a record uses
//!   when a provider reports no usage;
//! - **output**: the request's stated limit (`max_tokens`, `max_completion_tokens`,
//!   `max_output_tokens`, `generationConfig.maxOutputTokens`; the largest if several), else
//!   [`default_output_tokens`](BudgetLayerBuilder::default_output_tokens) (4096);
//! - **spend**: those tokens priced with the layer's [`PriceTable`](crate::pricing::PriceTable)
//!   as uncached input and plain output (an unpriced model reserves $0 and its records cost
//!   nothing); **requests**: 1.
//!
//! The request is admitted when `used + reserved + estimate ≤ cap` for every capped metric
//! of every counter. When the activity layer makes the record, the reservation is replaced by
//! the record's exact `cost_usd`, `input_tokens + output_tokens` and 1 request — errors and
//! client cancels settle what their record says was used, and release the rest. So every
//! counter's settled usage equals the sum over its requests' records, exactly: for a user's
//! [`Window::Total`] counter, `SUM(cost_usd)` of their activity log. A request belongs to the
//! window it was admitted in, and settles there even when it ends in the next one.
//!
//! **Overshoot.** A request can use more than it reserved only by using more tokens than
//! estimated. With the output limit stated and a provider that counts no more input tokens
//! than the estimate, a counter never passes its cap (overshoot exactly 0, under any
//! concurrency, on every store). Without a stated limit, each request may pass its reservation
//! by `(output − default_output_tokens) × output price`; a counter's overshoot is at most the
//! sum of that excess over the requests in flight when it reached its cap.
//!
//! # Refusals
//!
//! A request that does not fit is answered by the layer, never sent on: `429` with
//! `retry-after` (seconds to the window's end) when a window is exhausted, `402` when a
//! balance is, in the API's own error shape — OpenAI
//! `{"error": {"message", "type": "budget_exceeded" | "insufficient_credits", "code"}}`,
//! Anthropic `{"type": "error", "error": {"type": "rate_limit_error" | "insufficient_credits",
//! "message"}}`, Gemini `{"error": {"code", "status": "RESOURCE_EXHAUSTED", "message"}}` — and
//! recorded as a `budget.refused` event ([`events`](BudgetLayerBuilder::events)). Every
//! answer, refused or not, carries `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
//! for the tightest capped counter of each metric.
//!
//! # Thresholds
//!
//! Each time a counter's settled usage crosses a soft threshold of a cap (default 80 % and
//! 100 %), a `budget.threshold` event is recorded once (the store's settlement returns the
//! counter before and after atomically, so a fleet records it once too).
//!
//! # Stores
//!
//! [`MemoryBudgetStore`] for one process; `PostgresBudgetStore` (feature `postgres`) and
//! `RedisBudgetStore` (feature `redis`) for a fleet. Reservations in the shared stores carry
//! a lease that their process renews: when a process dies, what it reserved is released after
//! the lease. Without an activity layer inside, a reservation is released as soon as the
//! request is gone (counting the request, nothing else).

mod batch;
mod body;
mod estimate;
mod events;
mod layer;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod refusal;
mod scope;
mod service;
mod settle;
mod store;
mod usage;
mod window;

pub use self::body::BudgetBody;
pub use self::layer::{BudgetLayer, BudgetLayerBuilder};
pub use self::memory::MemoryBudgetStore;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresBudgetStore;
#[cfg(feature = "redis")]
pub use self::redis::{DEFAULT_PREFIX, RedisBudgetStore};
pub use self::scope::{ApiKeyId, Scope};
pub use self::service::{BudgetFuture, BudgetService};
pub use self::settle::BudgetStats;
pub use self::store::{
    Admission, BoxError, BudgetError, BudgetStore, Check, CounterKey, CounterState, DEFAULT_LEASE,
    DEFAULT_TIMEOUT, Verdict, expired, validate_limit,
};
pub use self::usage::{Limits, Usage};
pub use self::window::{Metric, UnknownName, Window};
