//! The example gateway: an axum proxy for OpenAI chat, Responses, Anthropic and Gemini that
//! accounts every request with [`ActivityLayer`], with users, chat sessions, the activity API,
//! metrics and a graceful shutdown. `src/main.rs` is the `gateway` binary; tests mount
//! [`Gateway::router`] (merge your own routes into it) or [`serve()`] it.
//!
//! # Routes
//!
//! | route | auth | what |
//! |---|---|---|
//! | `POST /auth/register` `{"email"}` | – | `201 {"user_id", "api_key"}`; `409` when the address is taken; `429` past [`REGISTER_PER_MINUTE`](limits) per client address; event `register` |
//! | `POST /auth/login` | key | `200 {"user_id", "email"}`; event `login` |
//! | `POST /v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/messages`, `/v1beta/models/{model}:generateContent`, `…:streamGenerateContent` | key | proxied to the upstream [`routing`] picks, recorded by the layer |
//! | `POST /v1/chat/sessions` `{title, model}`, `GET /v1/chat/sessions` | key | the caller's chat sessions; event `session_created` |
//! | `GET /user/activity/stats`, `GET /user/activity/log` | key | the caller's activity ([`activity`]) |
//! | `GET /user/activity/stream` | key | the caller's new records as SSE ([`dashboard::live`]) |
//! | `GET /user/credits`, `PUT /user/limits` | key | balance, spend and limits; lowering one's own ([`budget`]) |
//! | `POST /admin/users/{id}/credits`, `PUT /admin/users/{id}/limits` | admin | top-ups and limits, only with `ADMIN_TOKEN` ([`budget::admin`]) |
//! | `GET /dashboard/activity` | – | the activity dashboard page ([`dashboard`]) |
//! | `GET /metrics` | `METRICS_TOKEN` when set | Prometheus text |
//! | `GET /healthz` | – | liveness |
//!
//! Every proxied response names its record in `x-activity-id`. [`SharedState::live`] publishes
//! each record once stored, for a live feed.
//!
//! "key" is an API key from `/auth/register` in `Authorization: Bearer …` (or `x-api-key`,
//! `x-goog-api-key`); without a valid one the answer is `401` and nothing is recorded. Every
//! error the gateway itself answers is JSON: `{"error": {"message", "type"[, "parameter"]}}`.
//!
//! # Layers, outermost first
//!
//! [`front::EveryRequestLayer`] (every route: `400 invalid_path` for `..`, `//`, encoded dots
//! and slashes ([`paths::check`]); the body's idle and whole timeouts ([`limits::bound`])) →
//! [`front::llm`] on the LLM routes: [`auth::admit`] (puts the caller and an
//! [`Attribution`](tower_activity::Attribution) into the request; [`auth::require_key`] on the
//! other authenticated routes) → [`proxy::known_action`] → [`sessions::attribute`] (adds the
//! session) → [`routing::route`] (picks the upstream, `404` when none serves the model) → the
//! [`budget`] layer (credits and limits: `402`/`429`, never sent on, recorded as events) →
//! [`ActivityLayer`] → [`proxy::Forward`]. So the layer sees who made each request, and
//! requests refused before it (no key, someone else's session, no upstream, a body too slow)
//! are not recorded.

pub mod activity;
pub mod auth;
pub mod budget;
pub mod config;
pub mod config_file;
pub mod connections;
pub mod dashboard;
pub mod error;
pub mod fleet;
pub mod fresh;
pub mod front;
pub mod headers;
pub mod limits;
pub mod live_hub;
pub mod logging;
pub mod metrics;
pub mod paths;
pub mod pools;
pub mod prices;
pub mod proxy;
pub mod ratelimit;
pub mod repoll;
pub mod routing;
pub mod runtime;
pub mod serve;
pub mod sessions;
pub mod storage;
pub mod store;
pub mod telemetry;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post, post_service};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tower::{Layer, Service, ServiceBuilder};
use tower_activity::query::ActivityQuery;
use tower_activity::sink::{BroadcastSink, FanOut, OtelSink};
use tower_activity::{ActivityLayer, ActivitySink, ActivityWriter, EventRecorder, WriterStats};

pub use config::{GatewayConfig, UpstreamConfig, UpstreamUrl};
pub use connections::ConnectionThreads;
pub use limits::Limits;
pub use serve::{ServeOptions, ServeReport, serve, serve_with, shutdown_signal};
pub use storage::Storage;

use fresh::ReadYourWrites;
use live_hub::LiveHub;
use prices::PriceFile;
use proxy::UpstreamClient;
use ratelimit::RateLimiter;
use routing::Routes;
use store::AccountStore;

/// What every handler shares, behind one reference count: axum clones the state for every
/// `from_fn_with_state` middleware and every handler of every request (five times per LLM
/// request), and a clone of the fields themselves — a dozen reference counts, the HTTP
/// client's connector — was ≈ 8 % of the gateway's CPU under load (BENCHMARKS.md, "Under
/// load"). The fields are read through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

impl From<SharedState> for AppState {
    fn from(fields: SharedState) -> Self {
        AppState(Arc::new(fields))
    }
}

/// The fields of [`AppState`].
pub struct SharedState {
    /// Users and chat sessions.
    pub accounts: Arc<dyn AccountStore>,
    /// The activity records, for `/user/activity/*`.
    pub activity: Arc<dyn ActivityQuery>,
    /// Records application events (register, login, session created).
    pub events: EventRecorder,
    /// The activity writer (stats for `/metrics`).
    pub writer: ActivityWriter,
    /// What `/metrics` shows ([`metrics::Metrics`]); the budget layer counts its refusals here.
    pub metrics: metrics::Metrics,
    /// Where LLM requests go: the upstreams and their routes.
    pub upstream: UpstreamClient,
    /// Every record once stored, for live feeds (`live.subscribe()`).
    pub live: BroadcastSink<Arc<dyn ActivitySink>>,
    /// Each user's records once stored (the dashboard's `/user/activity/stream`).
    pub live_feeds: LiveHub,
    /// The activity API's shared flush before reading.
    pub fresh: ReadYourWrites,
    /// The bounds (timeouts, caps).
    pub limits: Arc<Limits>,
    /// `POST /auth/register`'s limit per client address.
    pub registrations: Arc<RateLimiter>,
    /// When set, `/metrics` needs it as a Bearer token.
    pub metrics_token: Option<Arc<str>>,
    /// Credits, limits and the admin API (`None` when `GATEWAY_ACTIVITY=off`: without
    /// records there is nothing to settle).
    pub budget: Option<budget::Budget>,
    /// Becomes `true` when the gateway starts shutting down: live feeds end then, instead of
    /// holding the shutdown for its whole grace period.
    pub closing: watch::Receiver<bool>,
}

/// The response header that names the record of a request (`x-activity-id: <uuid>`), so a
/// client can quote it (support tickets, load tests checking every request was stored).
pub const RECORD_ID_HEADER: &str = "x-activity-id";

/// The name of the database's sink in the writer's `FanOut` (`sink="database"` in
/// `/metrics`); the OpenTelemetry export, when on, is [`telemetry::SINK_NAME`].
pub const DATABASE_SINK: &str = "database";

/// A gateway ready to serve: its router and the handles to shut it down.
pub struct Gateway {
    state: AppState,
    closing: Arc<watch::Sender<bool>>,
    layer: ActivityLayer,
    activity: bool,
    storage: Storage,
    serve_options: ServeOptions,
    prices: Option<PriceFile>,
    reload_prices: Option<AbortHandle>,
    otel: Option<OtelSink>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("storage", &self.storage)
            .field("upstream", &self.state.upstream)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Opens the storage `config.database_url` names and starts the activity writer. An
    /// upstream must be set (`main` starts the mock when neither `UPSTREAM_URL` nor
    /// `GATEWAY_CONFIG` names one).
    pub async fn start(config: &GatewayConfig) -> Result<Gateway, String> {
        let mut storage = Storage::open_with(&config.database_url, &config.budget).await?;
        if let Some(url) = config
            .budget
            .store_url
            .as_ref()
            .filter(|_| config.budget_enabled)
        {
            storage.budget = budget::open_redis(url, config.budget.timeout).await?;
        }
        if let Some(fleet) = &config.fleet {
            storage = storage.publish_through(fleet).await?;
        }
        Gateway::with_storage(config, storage)
    }

    /// A gateway over an already opened [`Storage`].
    pub fn with_storage(config: &GatewayConfig, storage: Storage) -> Result<Gateway, String> {
        let routes = Routes::new(config.routes()?);
        let upstream = UpstreamClient::new(routes, &config.limits);
        let prices = config
            .prices_file
            .as_ref()
            .map(PriceFile::open)
            .transpose()?;
        let reload_prices = match &prices {
            Some(file) => Some(
                file.reload_on_sighup()
                    .map_err(|e| format!("PRICES_FILE: cannot listen for SIGHUP ({e})"))?
                    .abort_handle(),
            ),
            None => None,
        };
        let live = BroadcastSink::new(storage.sink.clone());
        let live_feeds = LiveHub::new({
            let live = live.clone();
            move || live.subscribe()
        });
        // Each sink is a lane of its own: a collector that is down never holds the log back.
        // The metrics only read each record: an observer, on the request's thread, no copy.
        let records = metrics::RecordMetrics::new();
        let mut sinks = FanOut::new()
            .sink(DATABASE_SINK, live.clone())
            .observer(metrics::SINK_NAME, records.clone());
        let otel = config.otlp.as_ref().map(|c| c.build()).transpose()?;
        if let Some(otel) = &otel {
            sinks = sinks.sink(telemetry::SINK_NAME, otel.clone());
        }
        let (closing, closing_rx) = watch::channel(false);
        // One table for the records and the budget's estimates (a SIGHUP reload swaps both).
        let price_table = prices
            .as_ref()
            .map(|file| file.prices().clone())
            .unwrap_or_default();
        let layer = ActivityLayer::builder(sinks)
            .writer_config(config.writer.clone())
            .record_id_header(HeaderName::from_static(RECORD_ID_HEADER))
            .prices(price_table.clone())
            .build();
        let budget = (config.activity && config.budget_enabled)
            .then(|| {
                budget::Budget::new(
                    &config.budget,
                    storage.budget.clone(),
                    layer.events(),
                    price_table,
                )
            })
            .transpose()?;
        let state = AppState::from(SharedState {
            budget,
            accounts: storage.accounts.clone(),
            activity: storage.activity.clone(),
            events: layer.events(),
            writer: layer.writer().clone(),
            metrics: metrics::Metrics::new(&records, layer.writer()),
            upstream,
            live,
            live_feeds,
            fresh: ReadYourWrites::start(layer.writer().clone()),
            limits: Arc::new(config.limits.clone()),
            registrations: Arc::new(RateLimiter::new(config.limits.register_per_minute)),
            metrics_token: config.metrics_token.as_deref().map(Arc::from),
            closing: closing_rx,
        });
        Ok(Gateway {
            state,
            closing: Arc::new(closing),
            layer,
            activity: config.activity,
            storage,
            serve_options: ServeOptions {
                grace: config.shutdown_grace,
                max_connections: config.limits.max_connections,
                header_timeout: config.limits.header_timeout,
                threads: None,
            },
            prices,
            reload_prices,
            otel,
        })
    }

    /// Every route of the gateway (see the module docs), ready to serve or to merge into.
    pub fn router(&self) -> Router {
        router(
            self.state.clone(),
            self.activity.then(|| self.layer.clone()),
        )
    }

    /// How [`serve_with`] should serve this gateway: its shutdown grace and connection
    /// bounds.
    pub fn serve_options(&self) -> ServeOptions {
        self.serve_options.clone()
    }

    /// The shared state (the stores, the writer, the upstream).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The storage the gateway opened.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The price file (`PRICES_FILE`), when one is set: its table, [`PriceFile::reload`].
    pub fn price_file(&self) -> Option<&PriceFile> {
        self.prices.as_ref()
    }

    /// The activity writer: `stats()`, `flush()`.
    pub fn writer(&self) -> &ActivityWriter {
        &self.state.writer
    }

    /// Ends the live feeds (`/user/activity/stream`); call it when the shutdown signal comes,
    /// so that open dashboards do not hold the server for its whole grace period.
    pub fn close_live_feeds(&self) {
        self.closing.send_replace(true);
    }

    /// [`close_live_feeds`](Self::close_live_feeds) as a handle for a task that does not hold
    /// the gateway (a shutdown future given to [`serve()`]).
    pub fn close_feeds_handle(&self) -> impl FnOnce() + Send + 'static {
        let closing = self.closing.clone();
        move || {
            closing.send_replace(true);
        }
    }

    /// Writes every queued record (waiting at most `deadline`), stops the writer, exports the
    /// last OpenTelemetry metrics and closes the database; returns the final counters of the
    /// database's sink (each sink's: [`ActivityWriter::sink_stats`]).
    pub async fn shutdown(&self, deadline: Duration) -> WriterStats {
        if let Some(task) = &self.reload_prices {
            task.abort();
        }
        self.state.writer.shutdown(deadline).await;
        if let Some(otel) = &self.otel {
            if let Err(e) = otel.shutdown().await {
                tracing::warn!("the last OpenTelemetry metrics were not exported: {e}");
            }
        }
        self.storage.close().await;
        self.database_stats()
    }

    /// The counters of the database's sink (the activity log).
    pub fn database_stats(&self) -> WriterStats {
        self.state
            .writer
            .sink_stats_of(DATABASE_SINK)
            .unwrap_or_default()
    }

    /// The OpenTelemetry sink, when the export is on (`flush_metrics`).
    pub fn otel(&self) -> Option<&OtelSink> {
        self.otel.as_ref()
    }
}

/// The gateway's routes over `state`, with `layer` on the LLM routes (none: the load test's
/// baseline).
///
/// Every boxed level costs each request allocations ([`front`] says which). So an LLM route is
/// one boxed level: a tower stack of what it passes ([`front::llm`], the budget, the activity
/// layer) around [`proxy::Forward`], a plain service, not an axum handler boxed again; and
/// what every route passes ([`front::EveryRequestLayer`]) wraps the whole router once, as its
/// fallback, instead of each route.
pub fn router(state: AppState, layer: Option<ActivityLayer>) -> Router {
    let forward = proxy::Forward::new(state.clone());
    // Outermost first.
    let common = ServiceBuilder::new().layer(from_fn_with_state(state.clone(), front::llm));
    let llm = match (layer, state.budget.as_ref().map(|b| b.layer.clone())) {
        (Some(layer), Some(budget)) => {
            llm_routes(common.layer(budget).layer(layer).service(forward))
        }
        (Some(layer), None) => llm_routes(common.layer(layer).service(forward)),
        (None, Some(budget)) => llm_routes(common.layer(budget).service(forward)),
        (None, None) => llm_routes(common.service(forward)),
    };
    let user = Router::new()
        .route(
            "/v1/chat/sessions",
            post(sessions::create)
                .get(sessions::list)
                .layer(DefaultBodyLimit::max(limits::SMALL_BODY)),
        )
        .route("/user/activity/stats", get(activity::stats))
        .route("/user/activity/log", get(activity::log))
        .route("/user/activity/stream", get(activity::stream))
        .route("/user/credits", get(budget::credits::get))
        .route("/user/limits", axum::routing::put(budget::limits::put_own))
        .layer(from_fn_with_state(state.clone(), auth::require_key));
    let routes = Router::new()
        .route(
            "/auth/register",
            post(auth::register)
                .layer(DefaultBodyLimit::max(limits::SMALL_BODY))
                .layer(from_fn_with_state(state.clone(), ratelimit::registrations)),
        )
        .route("/auth/login", post(auth::login))
        .route(
            "/metrics",
            get(metrics::metrics).layer(from_fn_with_state(
                state.clone(),
                auth::require_metrics_token,
            )),
        )
        .route("/healthz", get(metrics::healthz))
        .merge(user)
        .merge(llm)
        .merge(budget::admin::routes(&state))
        .merge(dashboard::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state.clone());
    Router::new().fallback_service(front::EveryRequestLayer::new(state).layer(routes))
}

/// The LLM routes (`POST` only), each served by `service`.
fn llm_routes<S>(service: S) -> Router<AppState>
where
    S: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse + 'static,
    S::Future: Send + 'static,
{
    Router::new()
        .route("/v1/chat/completions", post_service(service.clone()))
        .route("/v1/responses", post_service(service.clone()))
        .route("/v1/embeddings", post_service(service.clone()))
        .route("/v1/messages", post_service(service.clone()))
        .route("/v1beta/models/{*rest}", post_service(service))
}
