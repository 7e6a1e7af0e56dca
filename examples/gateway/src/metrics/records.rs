//! [`RecordMetrics`]: the LLM requests' Prometheus metrics, counted from their activity
//! records. It is an observer of the writer's `FanOut`: it reads each record the writer takes,
//! on the request's thread as the record is made, without a copy or a queue. So its sums are
//! those of the records the writer took — the log's sums, with the same exact tokens and cost,
//! unless the database's lane dropped or failed some (`activity_records_dropped_total` and
//! `activity_records_failed_total` with `sink="database"` count them), and it counts a record
//! before the database has it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tower_activity::{ActivityRecord, RecordKind, RecordObserver};

use super::series::{Series, TOKEN_TYPES};

/// The most models (and providers) the per-model metrics keep apart; the records of later
/// ones are counted under `model="other"` (`provider="other"`), so a client sending made-up
/// model names cannot grow the scrape without bound.
pub const MAX_MODELS: usize = 100;
/// The most providers kept apart (the rest: `provider="other"`).
pub const MAX_PROVIDERS: usize = 32;
/// The most routes kept apart (the rest: `route="other"`).
pub const MAX_ROUTES: usize = 32;
/// The label value past a cap.
pub const OTHER: &str = "other";
/// The event a budget records for each request it refuses (counted by status).
pub const REFUSED: &str = "budget.refused";
/// The label value of a record without a model or provider.
pub const UNKNOWN: &str = "unknown";

/// Request duration buckets (seconds): LLM calls take from tens of milliseconds (a cached
/// embedding) to minutes (a long generation).
const DURATION_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];
/// Time-to-first-token buckets (seconds).
const TTFT_BUCKETS: [f64; 12] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
    provider: String,
}

/// A model's labels and its key in the cost sums, built once per kept series.
#[derive(Debug)]
struct ModelEntry {
    labels: ModelLabels,
    cost: (String, String),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    provider: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn ttft_histogram() -> Histogram {
    Histogram::new(TTFT_BUCKETS)
}

/// Exact cost sums by (model, provider), read at each scrape.
type CostSums = Arc<Mutex<BTreeMap<(String, String), Decimal>>>;

/// The LLM requests' metrics (see the [module docs](super)); give it to the writer's `FanOut`
/// as an observer (`FanOut::observer`), then to [`Metrics::new`](super::Metrics::new). Cheap
/// to clone.
#[derive(Clone)]
pub struct RecordMetrics {
    requests: Family<RouteLabels, Counter>,
    duration: HistogramFamily<RouteLabels>,
    model_requests: Family<ModelLabels, Counter>,
    ttft: HistogramFamily<ModelLabels>,
    tokens: Family<TokenLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    cost: CostSums,
    routes: Arc<Bounded>,
    models: Arc<Bounded>,
    providers: Arc<Bounded>,
    /// The series each recent route and model counts into.
    series: Arc<Mutex<Series<RouteLabels, ModelEntry>>>,
}

impl Default for RecordMetrics {
    fn default() -> Self {
        RecordMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            model_requests: Family::default(),
            ttft: Family::new_with_constructor(ttft_histogram),
            tokens: Family::default(),
            refusals: Family::default(),
            cost: CostSums::default(),
            routes: Arc::new(Bounded::new(MAX_ROUTES)),
            models: Arc::new(Bounded::new(MAX_MODELS)),
            providers: Arc::new(Bounded::new(MAX_PROVIDERS)),
            series: Arc::default(),
        }
    }
}

impl fmt::Debug for RecordMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordMetrics").finish_non_exhaustive()
    }
}

impl RecordMetrics {
    /// No request counted yet.
    pub fn new() -> Self {
        RecordMetrics::default()
    }

    /// Registers every metric in `registry`.
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_llm_requests",
            "LLM requests recorded, by route and outcome (ok, error, cancelled, interrupted)",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "gateway_llm_request_duration",
            "LLM requests from arrival to the end of the response body, by route and outcome",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "gateway_llm_model_requests",
            "LLM requests recorded, by model and provider",
            self.model_requests.clone(),
        );
        registry.register_with_unit(
            "gateway_llm_time_to_first_token",
            "Streams: request arrival to the first output, by model and provider",
            Unit::Seconds,
            self.ttft.clone(),
        );
        registry.register(
            "gateway_llm_tokens",
            "Tokens by model, provider and type (input, output, cache_read, cache_write, reasoning); unknown counts add nothing",
            self.tokens.clone(),
        );
        registry.register(
            "gateway_budget_refusals",
            "Requests a budget refused before they went upstream (its `budget.refused` events), by the status answered (402: no credit left, 429: a window is exhausted)",
            self.refusals.clone(),
        );
        registry.register_collector(Box::new(CostCollector(Arc::clone(&self.cost))));
    }

    /// Counts one request record.
    fn request(&self, r: &ActivityRecord) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let by_route = series.route(&r.endpoint, r.outcome.as_str(), || {
            let labels = RouteLabels {
                route: self.routes.label(&route(&r.endpoint)),
                outcome: r.outcome.as_str(),
            };
            let requests = self.requests.get_or_create(&labels).clone();
            (labels, requests)
        });
        by_route.requests.inc();
        if let Some(ms) = r.latency_ms {
            let labels = &by_route.labels;
            by_route
                .duration
                .get_or_insert_with(|| self.duration.get_or_create(labels).clone())
                .observe(ms / 1000.0);
        }
        let by_model = series.model(r.model.as_deref(), r.provider.as_deref(), || {
            let labels = ModelLabels {
                model: self.models.label(r.model.as_deref().unwrap_or(UNKNOWN)),
                provider: self
                    .providers
                    .label(r.provider.as_deref().unwrap_or(UNKNOWN)),
            };
            let requests = self.model_requests.get_or_create(&labels).clone();
            let cost = (labels.model.clone(), labels.provider.clone());
            (ModelEntry { labels, cost }, requests)
        });
        by_model.requests.inc();
        let labels = &by_model.labels.labels;
        if let Some(ms) = r.ttft_ms {
            by_model
                .ttft
                .get_or_insert_with(|| self.ttft.get_or_create(labels).clone())
                .observe(ms / 1000.0);
        }
        let counts = [
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.reasoning_tokens,
        ];
        for ((n, slot), kind) in counts
            .into_iter()
            .zip(&mut by_model.tokens)
            .zip(TOKEN_TYPES)
        {
            if let Some(n) = n {
                slot.get_or_insert_with(|| {
                    let labels = TokenLabels {
                        model: labels.model.clone(),
                        provider: labels.provider.clone(),
                        r#type: kind,
                    };
                    self.tokens.get_or_create(&labels).clone()
                })
                .inc_by(n);
            }
        }
        if let Some(cost) = r.cost_usd {
            let mut sums = self.cost.lock().unwrap_or_else(|e| e.into_inner());
            let key = &by_model.labels.cost;
            match sums.get_mut(key) {
                Some(sum) => *sum += cost,
                None => {
                    sums.insert(key.clone(), cost);
                }
            }
        }
    }
}

/// Counters in the process, bumped as each record is taken (a restart starts them at zero,
/// as Prometheus expects): a lock on the few series a gateway's records name, no I/O.
impl RecordObserver for RecordMetrics {
    fn observe(&self, record: &ActivityRecord) {
        match record.kind {
            RecordKind::Request => self.request(record),
            RecordKind::Event if record.endpoint == REFUSED => {
                let status = record.status_code.unwrap_or_default();
                self.refusals.get_or_create(&RefusalLabels { status }).inc();
            }
            _ => {}
        }
    }
}

/// The route of an LLM endpoint: the path, with a Gemini model folded into `*`
/// (`/v1beta/models/*:generateContent`), so that the label does not grow with the models.
pub fn route(endpoint: &str) -> String {
    match endpoint.strip_prefix("/v1beta/models/") {
        Some(rest) => match rest.rsplit_once(':') {
            Some((_, action)) => format!("/v1beta/models/*:{action}"),
            None => "/v1beta/models/*".to_owned(),
        },
        None => endpoint.to_owned(),
    }
}

/// Keeps at most `max` label values apart; later ones read [`OTHER`].
struct Bounded {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl Bounded {
    fn new(max: usize) -> Self {
        Bounded {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    fn label(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(value) || (seen.len() < self.max && seen.insert(value.to_owned())) {
            value.to_owned()
        } else {
            OTHER.to_owned()
        }
    }
}

/// `gateway_llm_cost_usd_total`, from exact decimal sums: each scrape shows the exact total
/// rounded once to a double, not a float sum that drifts with every request.
#[derive(Debug)]
struct CostCollector(CostSums);

impl Collector for CostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let sums = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut metric = encoder.encode_descriptor(
            "gateway_llm_cost_usd",
            "Cost of the LLM requests in US dollars, by model and provider (exact sums, rounded once).",
            None,
            MetricType::Counter,
        )?;
        for ((model, provider), sum) in &sums {
            let labels = [("model", model.as_str()), ("provider", provider.as_str())];
            ConstCounter::new(sum.to_f64().unwrap_or(f64::MAX))
                .encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_models_fold_into_the_route_template() {
        assert_eq!(route("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(
            route("/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
            "/v1beta/models/*:streamGenerateContent"
        );
        assert_eq!(route("/v1beta/models/x"), "/v1beta/models/*");
    }

    #[test]
    fn values_past_the_cap_read_other() {
        let b = Bounded::new(2);
        assert_eq!(b.label("a"), "a");
        assert_eq!(b.label("b"), "b");
        assert_eq!(b.label("c"), OTHER);
        assert_eq!(b.label("a"), "a", "a value kept stays kept");
        assert_eq!(b.seen.lock().unwrap().len(), 2);
    }
}
