//! [`BudgetLayer`]: configuration, its builder, and `impl Layer`.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::request::Parts;
use rust_decimal::Decimal;
use tower_layer::Layer;

use crate::attribution::{Attribution, EventRecorder};
use crate::pricing::SharedPrices;
use crate::record::LlmApi;
use crate::settings::AttributionHook;

use super::batch::Queue;
use super::scope::Scope;
use super::service::BudgetService;
use super::settle::{BudgetStats, Tracker};
use super::store::{BudgetError, BudgetStore, Check, CounterKey, validate_limit};
use super::usage::{Limits, Usage};
use super::window::{Metric, Window};

/// Where the time comes from (the wall clock; tests move it).
pub(super) type Clock = dyn Fn() -> DateTime<Utc> + Send + Sync;

/// A counter the layer keeps for every subject of a scope, with its default caps.
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    pub(super) scope: Scope,
    pub(super) window: Window,
    pub(super) defaults: Limits,
}

/// What every service and settlement of a layer shares.
pub(crate) struct Shared {
    pub(super) store: Arc<dyn BudgetStore>,
    pub(super) prices: SharedPrices,
    pub(super) tracked: Vec<Tracked>,
    pub(super) thresholds: Vec<Decimal>,
    pub(super) default_output_tokens: u64,
    pub(super) max_request_body: usize,
    pub(super) events: Option<EventRecorder>,
    pub(super) attribution: Option<Arc<AttributionHook>>,
    pub(super) routes: Vec<(String, LlmApi)>,
    pub(super) clock: Arc<Clock>,
    pub(super) fail_closed: bool,
    pub(super) tracker: Tracker,
    /// Settlements on their way to a store that batches them.
    pub(super) queue: Queue,
}

impl Shared {
    /// The wire format of `path`: an explicit route first, then [`LlmApi::detect`].
    pub(super) fn api_for(&self, path: &str) -> LlmApi {
        crate::settings::api_for(&self.routes, path)
    }

    /// Who made the request: the extensions' attribution, else the hook's.
    pub(super) fn who(&self, parts: &Parts) -> Option<Attribution> {
        parts
            .extensions
            .get::<Attribution>()
            .cloned()
            .or_else(|| self.attribution.as_ref().and_then(|h| h(parts)))
    }

    /// The counters a request is charged to, each once.
    pub(super) fn checks(
        &self,
        parts: &Parts,
        who: Option<&Attribution>,
        model: Option<&str>,
        estimate: &Usage,
        now: DateTime<Utc>,
    ) -> Vec<Check> {
        let mut checks: Vec<Check> = Vec::with_capacity(self.tracked.len());
        // The last scope's subject: the windows of one scope share it.
        let mut last: Option<(&Scope, Option<Arc<str>>)> = None;
        for t in &self.tracked {
            let subject = match &last {
                Some((scope, subject)) if scope.same_subjects(&t.scope) => subject.clone(),
                _ => {
                    let subject = t.scope.subject(parts, who, model);
                    last = Some((&t.scope, subject.clone()));
                    subject
                }
            };
            let Some(subject) = subject else {
                continue;
            };
            let counter = CounterKey::at(subject, t.window, now);
            match checks.iter_mut().find(|c| c.counter == counter) {
                Some(c) => c.defaults = c.defaults.overridden_by(&t.defaults),
                None => checks.push(Check {
                    counter,
                    estimate: *estimate,
                    defaults: t.defaults,
                }),
            }
        }
        checks
    }
}

/// The tower layer that enforces spend, token and request limits per subject and window,
/// from the exact records an [`ActivityLayer`](crate::ActivityLayer) inside it makes.
///
/// Put it **outside** the activity layer (and inside the auth that names the user): it
/// reserves each request's upper estimate before calling the inner service, refuses what
/// does not fit (in the API's own error shape, never sent upstream, recorded as a
/// `budget.refused` event), and settles to the record's exact `cost_usd` and tokens through
/// a [`Settlement`](crate::Settlement). See the [module docs](super) for the whole story.
#[derive(Clone)]
pub struct BudgetLayer {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for BudgetLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetLayer")
            .field("tracked", &self.shared.tracked)
            .field("thresholds", &self.shared.thresholds)
            .finish_non_exhaustive()
    }
}

impl BudgetLayer {
    /// A builder over `store`.
    pub fn builder(store: impl BudgetStore) -> BudgetLayerBuilder {
        BudgetLayerBuilder::new(Arc::new(store))
    }

    /// A builder over a store the application shares (the gateway's admin API tops it up).
    pub fn builder_shared(store: Arc<dyn BudgetStore>) -> BudgetLayerBuilder {
        BudgetLayerBuilder::new(store)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BudgetStore> {
        &self.shared.store
    }

    /// The layer's counters.
    pub fn stats(&self) -> BudgetStats {
        self.shared.tracker.stats()
    }

    /// Waits until every settlement handed over so far is in the store (reads of the
    /// counters then see every finished request).
    pub async fn flush(&self) {
        self.shared.tracker.idle().await;
    }

    /// The counters `subject` (`user:u_42` …) has in the layer's tracked windows that contain
    /// `now`, with their caps in force: what a "credits and limits" page shows.
    pub async fn counters(
        &self,
        scope: &Scope,
        value: &str,
    ) -> Result<Vec<super::store::CounterState>, BudgetError> {
        let now = (self.shared.clock)();
        let subject = format!("{}:{value}", scope.name());
        let mut keys: Vec<(CounterKey, Limits)> = Vec::new();
        for t in self.shared.tracked.iter().filter(|t| &t.scope == scope) {
            let key = CounterKey::at(subject.clone(), t.window, now);
            match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, d)) => *d = d.overridden_by(&t.defaults),
                None => keys.push((key, t.defaults)),
            }
        }
        self.shared.store.counters(&keys).await
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = BudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BudgetService::new(inner, self.shared.clone())
    }
}

/// Configures a [`BudgetLayer`].
pub struct BudgetLayerBuilder {
    store: Arc<dyn BudgetStore>,
    prices: Option<SharedPrices>,
    tracked: Vec<Tracked>,
    thresholds: Vec<Decimal>,
    default_output_tokens: u64,
    max_request_body: usize,
    events: Option<EventRecorder>,
    attribution: Option<Arc<AttributionHook>>,
    routes: Vec<(String, LlmApi)>,
    clock: Arc<Clock>,
    fail_closed: bool,
    invalid: Option<BudgetError>,
}

impl fmt::Debug for BudgetLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetLayerBuilder")
            .field("tracked", &self.tracked)
            .field("thresholds", &self.thresholds)
            .field("default_output_tokens", &self.default_output_tokens)
            .finish_non_exhaustive()
    }
}

impl BudgetLayerBuilder {
    /// Output tokens assumed for a request that states no limit (`max_tokens` …): 4096.
    pub const DEFAULT_OUTPUT_TOKENS: u64 = 4096;

    fn new(store: Arc<dyn BudgetStore>) -> Self {
        BudgetLayerBuilder {
            store,
            prices: None,
            tracked: Vec::new(),
            thresholds: vec![Decimal::new(8, 1), Decimal::ONE],
            default_output_tokens: Self::DEFAULT_OUTPUT_TOKENS,
            max_request_body: crate::ActivityLayerBuilder::DEFAULT_MAX_REQUEST_BODY,
            events: None,
            attribution: None,
            routes: Vec::new(),
            clock: Arc::new(Utc::now),
            fail_closed: false,
            invalid: None,
        }
    }

    fn tracked_mut(&mut self, scope: Scope, window: Window) -> &mut Tracked {
        let at = self
            .tracked
            .iter()
            .position(|t| t.scope == scope && t.window == window);
        let at = at.unwrap_or_else(|| {
            self.tracked.push(Tracked {
                scope,
                window,
                defaults: Limits::none(),
            });
            self.tracked.len() - 1
        });
        &mut self.tracked[at]
    }

    /// Keeps a counter for every subject of `scope` over `window`, without a default cap:
    /// caps come from the store ([`BudgetStore::set_limit`]) per subject, and the counter
    /// answers "spent today" either way.
    pub fn track(mut self, scope: Scope, window: Window) -> Self {
        self.tracked_mut(scope, window);
        self
    }

    /// Caps `metric` over `window` for every subject of `scope` at `max` (a subject's own
    /// cap in the store replaces it). Spend is in US dollars; tokens and requests are whole
    /// numbers. An invalid cap makes [`build`](Self::build) fail.
    pub fn limit(mut self, scope: Scope, window: Window, metric: Metric, max: Decimal) -> Self {
        if let Err(e) = validate_limit(window, metric, max) {
            self.invalid.get_or_insert(e);
        }
        let tracked = self.tracked_mut(scope, window);
        tracked.defaults = tracked.defaults.with(metric, Some(max));
        self
    }

    /// Keeps a balance for every subject of `scope`: a [`Window::Total`] counter whose spend
    /// cap is the credit granted in the store ([`BudgetStore::raise_limit`]). Running out is a
    /// `402 insufficient_credits`. A subject never granted anything has no cap.
    pub fn credits(self, scope: Scope) -> Self {
        self.track(scope, Window::Total)
    }

    /// Soft thresholds, as fractions of a cap (default `0.8` and `1.0`): each time settled
    /// usage crosses one, a `budget.threshold` event is recorded (needs
    /// [`events`](Self::events)).
    pub fn thresholds(mut self, fractions: impl IntoIterator<Item = Decimal>) -> Self {
        self.thresholds = fractions.into_iter().collect();
        self
    }

    /// Output tokens reserved for a request that states no limit (default
    /// [`DEFAULT_OUTPUT_TOKENS`](Self::DEFAULT_OUTPUT_TOKENS)). Such a request can use more
    /// than it reserved: see the module docs for the bound on the overshoot.
    pub fn default_output_tokens(mut self, tokens: u64) -> Self {
        self.default_output_tokens = tokens;
        self
    }

    /// The price table estimates are priced with (default: the embedded table). Give the
    /// activity layer's (the same [`SharedPrices`], when it is replaced at run time), so that
    /// estimates and records agree.
    pub fn prices(mut self, prices: impl Into<SharedPrices>) -> Self {
        self.prices = Some(prices.into());
        self
    }

    /// Where `budget.refused` and `budget.threshold` events go (usually the activity layer's
    /// [`events()`](crate::ActivityLayer::events)). Without it, none are recorded.
    pub fn events(mut self, events: EventRecorder) -> Self {
        self.events = Some(events);
        self
    }

    /// Derives the attribution from the request head when the extensions carry none (as
    /// [`ActivityLayerBuilder::attribution`](crate::ActivityLayerBuilder::attribution)).
    pub fn attribution(
        mut self,
        hook: impl Fn(&Parts) -> Option<Attribution> + Send + Sync + 'static,
    ) -> Self {
        self.attribution = Some(Arc::new(hook));
        self
    }

    /// Maps an exact request path to a wire format, ahead of [`LlmApi::detect`] (give the
    /// activity layer's routes too).
    pub fn route(mut self, path: impl Into<String>, api: LlmApi) -> Self {
        self.routes.push((path.into(), api));
        self
    }

    /// The largest request body read to estimate (default 1 MiB, as the activity layer);
    /// beyond it every byte counts as a prompt character.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// Answers `503` when the store cannot be asked, instead of sending the request on
    /// unchecked (the default: a budget store outage does not take the API down; each such
    /// request is counted in [`BudgetStats::store_errors`]).
    pub fn fail_closed(mut self, on: bool) -> Self {
        self.fail_closed = on;
        self
    }

    /// The clock windows are read from (default: the system clock).
    pub fn clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the layer; on a Tokio runtime, starts the store's housekeeping task (leases,
    /// old windows), which stops when the last clone of the layer and its services is gone.
    pub fn build(self) -> Result<BudgetLayer, BudgetError> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        let shared = Arc::new(Shared {
            store: self.store,
            prices: self.prices.unwrap_or_default(),
            tracked: self.tracked,
            thresholds: self.thresholds,
            default_output_tokens: self.default_output_tokens,
            max_request_body: self.max_request_body,
            events: self.events,
            attribution: self.attribution,
            routes: self.routes,
            clock: self.clock,
            fail_closed: self.fail_closed,
            tracker: Tracker::default(),
            queue: Queue::default(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(housekeeping(Arc::downgrade(&shared)));
        }
        Ok(BudgetLayer { shared })
    }
}

/// Runs the store's [`maintain`](BudgetStore::maintain) at its interval while the layer lives.
async fn housekeeping(shared: Weak<Shared>) {
    loop {
        let interval = match shared.upgrade() {
            Some(s) => {
                if let Err(e) = s.store.maintain((s.clock)()).await {
                    tracing::warn!("budget store housekeeping failed: {e}");
                }
                s.store.maintenance_interval()
            }
            None => return,
        };
        tokio::time::sleep(interval.max(Duration::from_millis(10))).await;
    }
}
