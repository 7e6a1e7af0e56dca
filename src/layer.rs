//! [`ActivityLayer`]: configuration, its builder, and `impl Layer`.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use http::request::Parts;
use tower_layer::Layer;

use crate::attribution::{Attribution, EventRecorder};
use crate::pricing::SharedPrices;
use crate::provider::ProviderRules;
use crate::record::LlmApi;
use crate::service::ActivityService;
use crate::settings::{AttributionHook, Settings};
use crate::sink::FanOut;
use crate::writer::{ActivityWriter, WriterConfig, WriterGuard};

/// The tower layer that accounts every request of the service it wraps.
///
/// `ActivityLayer::new(sink)` starts a background [`ActivityWriter`] on the current Tokio
/// runtime; [`ActivityLayer::builder`] sets everything else. Cloning the layer shares the writer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_activity::ActivityLayer;
/// use tower_activity::sink::MemorySink;
/// let layer = ActivityLayer::new(MemorySink::new());
/// let stats = layer.writer().stats();
/// assert_eq!(stats.enqueued, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct ActivityLayer {
    settings: Arc<Settings>,
}

impl fmt::Debug for ActivityLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityLayer")
            .field("include_usage", &self.settings.include_usage)
            .field("routes", &self.settings.routes)
            .finish_non_exhaustive()
    }
}

impl ActivityLayer {
    /// A layer with every default, writing to `sink`.
    ///
    /// The writer runs until every handle is gone; to drain it at the end of the program, call
    /// `layer.writer().shutdown(deadline)` — or use [`pair`](Self::pair), whose guard makes
    /// that step hard to forget.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the writer task needs one). Use
    /// [`ActivityLayerBuilder::writer`] with a writer started elsewhere to avoid that.
    pub fn new(sink: impl Into<FanOut>) -> Self {
        ActivityLayer::builder(sink).build()
    }

    /// A layer with every default writing to `sink`, and the guard that drains its writer:
    /// call [`WriterGuard::shutdown`] once the server has stopped (the shape of tower's
    /// `Buffer::pair`). See [`ActivityLayerBuilder::pair`] for a configured layer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_activity::ActivityLayer;
    /// use tower_activity::sink::MemorySink;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (layer, writer) = ActivityLayer::pair(MemorySink::new());
    /// # let _ = layer;
    /// let stats = writer.shutdown(Duration::from_secs(10)).await;
    /// assert_eq!(stats.dropped_closed, 0);
    /// # }
    /// ```
    ///
    /// # Panics
    /// Outside a Tokio runtime, as [`new`](Self::new).
    pub fn pair(sink: impl Into<FanOut>) -> (Self, WriterGuard) {
        ActivityLayer::builder(sink).pair()
    }

    /// A builder writing to `sink`: one [`ActivitySink`](crate::ActivitySink), or a
    /// [`FanOut`] of named sinks that each get every record through a queue of their own.
    pub fn builder(sink: impl Into<FanOut>) -> ActivityLayerBuilder {
        let sinks = sink.into();
        ActivityLayerBuilder {
            sink: Some(Box::new(move |config| ActivityWriter::start(sinks, config))),
            writer: None,
            writer_config: WriterConfig::default(),
            prices: None,
            providers: ProviderRules::default(),
            attribution: None,
            max_request_body: ActivityLayerBuilder::DEFAULT_MAX_REQUEST_BODY,
            max_response_body: ActivityLayerBuilder::DEFAULT_MAX_RESPONSE_BODY,
            max_sse_line: ActivityLayerBuilder::DEFAULT_MAX_SSE_LINE,
            include_usage: true,
            routes: Vec::new(),
            record_id_header: None,
        }
    }

    /// The writer handle: `stats()`, `flush()`, `shutdown(deadline)`.
    pub fn writer(&self) -> &ActivityWriter {
        &self.settings.writer
    }

    /// A handle that records application events through the same writer.
    pub fn events(&self) -> EventRecorder {
        EventRecorder::new(self.settings.writer.clone())
    }
}

impl<S> Layer<S> for ActivityLayer {
    type Service = ActivityService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ActivityService::new(inner, self.settings.clone())
    }
}

type StartWriter = Box<dyn FnOnce(WriterConfig) -> ActivityWriter>;

/// Configures an [`ActivityLayer`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_activity::{ActivityLayer, LlmApi, Attribution};
/// use tower_activity::pricing::PriceTable;
/// use tower_activity::sink::MemorySink;
/// let layer = ActivityLayer::builder(MemorySink::new())
///     .prices(PriceTable::default())
///     .include_usage(true)
///     .route("/proxy/chat", LlmApi::OpenAiChat)
///     .attribution(|parts| {
///         let user = parts.headers.get("x-user")?.to_str().ok()?;
///         Some(Attribution::user(user))
///     })
///     .build();
/// # let _ = layer;
/// # }
/// ```
pub struct ActivityLayerBuilder {
    sink: Option<StartWriter>,
    writer: Option<ActivityWriter>,
    writer_config: WriterConfig,
    prices: Option<SharedPrices>,
    providers: ProviderRules,
    attribution: Option<Arc<AttributionHook>>,
    max_request_body: usize,
    max_response_body: usize,
    max_sse_line: usize,
    include_usage: bool,
    routes: Vec<(String, LlmApi)>,
    record_id_header: Option<HeaderName>,
}

impl fmt::Debug for ActivityLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityLayerBuilder")
            .field("writer_config", &self.writer_config)
            .field("max_request_body", &self.max_request_body)
            .field("max_response_body", &self.max_response_body)
            .field("max_sse_line", &self.max_sse_line)
            .field("include_usage", &self.include_usage)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl ActivityLayerBuilder {
    /// Default cap on the request body the layer reads (model, `stream`, `stream_options`):
    /// 1 MiB.
    pub const DEFAULT_MAX_REQUEST_BODY: usize = 1024 * 1024;
    /// Default cap on a JSON response body the layer keeps to read its usage: 16 MiB.
    pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;
    /// Default cap on one SSE line (or one event's data) the layer carries across frames:
    /// 1 MiB.
    pub const DEFAULT_MAX_SSE_LINE: usize = crate::sse::DEFAULT_MAX_LINE;

    /// The price table (default: the embedded table,
    /// [`PriceTable::default`](crate::pricing::PriceTable::default)): a
    /// [`PriceTable`](crate::pricing::PriceTable), or a [`SharedPrices`] to replace it while the layer runs (a reloaded
    /// price file; each record is priced from one whole table).
    pub fn prices(mut self, prices: impl Into<SharedPrices>) -> Self {
        self.prices = Some(prices.into());
        self
    }

    /// The model-to-maker rules (default: [`ProviderRules::default`]).
    pub fn providers(mut self, providers: ProviderRules) -> Self {
        self.providers = providers;
        self
    }

    /// Derives the attribution from the request head when the request extensions carry no
    /// [`Attribution`].
    pub fn attribution(
        mut self,
        hook: impl Fn(&Parts) -> Option<Attribution> + Send + Sync + 'static,
    ) -> Self {
        self.attribution = Some(Arc::new(hook));
        self
    }

    /// The largest request body the layer reads (default 1 MiB). Larger bodies stream through
    /// untouched and the record says `metadata.request_body = "over_cap"`.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// The largest JSON response body the layer keeps to read usage from (default 16 MiB);
    /// larger bodies pass through and the record says `metadata.response_body = "over_cap"`.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The longest SSE line carried across frames (default 1 MiB); longer lines are skipped
    /// for accounting (`metadata.sse_lines_skipped`) and still reach the client.
    pub fn max_sse_line(mut self, bytes: usize) -> Self {
        self.max_sse_line = bytes.max(1);
        self
    }

    /// Whether OpenAI chat streaming requests without `stream_options.include_usage` are
    /// rewritten to ask for usage (default `true`). The usage chunk the client did not ask
    /// for is removed from what it receives.
    pub fn include_usage(mut self, on: bool) -> Self {
        self.include_usage = on;
        self
    }

    /// Maps an exact request path to a wire format, ahead of [`LlmApi::detect`].
    pub fn route(mut self, path: impl Into<String>, api: LlmApi) -> Self {
        self.routes.push((path.into(), api));
        self
    }

    /// Adds the record's [`id`](crate::ActivityRecord::id) to every response as this header
    /// (off by default), so a client can quote the record of its request: support tickets,
    /// feedback, or a load test checking that every request was written.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower_activity::ActivityLayer;
    /// use tower_activity::sink::MemorySink;
    /// let layer = ActivityLayer::builder(MemorySink::new())
    ///     .record_id_header(http::HeaderName::from_static("x-activity-id"))
    ///     .build();
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn record_id_header(mut self, name: HeaderName) -> Self {
        self.record_id_header = Some(name);
        self
    }

    /// Tuning for the writer this builder starts.
    pub fn writer_config(mut self, config: WriterConfig) -> Self {
        self.writer_config = config;
        self
    }

    /// Uses an already started writer (shared with other layers) instead of starting one for
    /// the sink given to [`ActivityLayer::builder`].
    pub fn writer(mut self, writer: ActivityWriter) -> Self {
        self.writer = Some(writer);
        self.sink = None;
        self
    }

    /// Builds the layer and the guard that drains its writer (see [`ActivityLayer::pair`]).
    ///
    /// # Panics
    /// When a writer must be started outside a Tokio runtime.
    pub fn pair(self) -> (ActivityLayer, WriterGuard) {
        let layer = self.build();
        let guard = WriterGuard::new(layer.writer().clone());
        (layer, guard)
    }

    /// Builds the layer, starting the writer unless one was given.
    ///
    /// # Panics
    /// When a writer must be started outside a Tokio runtime.
    pub fn build(self) -> ActivityLayer {
        let writer = match (self.writer, self.sink) {
            (Some(w), _) => w,
            (None, Some(start)) => start(self.writer_config),
            (None, None) => unreachable!("the builder always holds a sink or a writer"),
        };
        ActivityLayer {
            settings: Arc::new(Settings {
                prices: self.prices.unwrap_or_default(),
                providers: self.providers,
                attribution: self.attribution,
                max_request_body: self.max_request_body,
                max_response_body: self.max_response_body,
                max_sse_line: self.max_sse_line,
                include_usage: self.include_usage,
                routes: self.routes,
                record_id_header: self.record_id_header,
                writer,
            }),
        }
    }
}
