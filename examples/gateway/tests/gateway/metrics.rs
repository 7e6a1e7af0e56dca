//! `/metrics` read with a Prometheus text parser (`prometheus-parse`): per model and
//! provider, the requests, tokens and cost equal the activity log's sums; per route and
//! outcome, the request counts and latency histograms equal the log's; the writer's counters
//! are there for each sink; model labels stay bounded.

use std::collections::BTreeMap;

use gateway::metrics::{MAX_MODELS, Metrics, OTHER, RecordMetrics, route};
use prometheus_parse::{Scrape, Value as Parsed};
use rust_decimal::prelude::ToPrimitive;
use tower_activity::sink::NoopSink;
use tower_activity::{ActivitySink, ActivityWriter, RecordObserver, WriterConfig};

use super::*;

fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the text parses")
}

/// A counter's or a gauge's value.
fn value(v: &Parsed) -> f64 {
    match v {
        Parsed::Counter(x) | Parsed::Gauge(x) | Parsed::Untyped(x) => *x,
        other => panic!("not a single value: {other:?}"),
    }
}

/// The sum of the samples of `metric` whose labels include `want`.
fn sum(s: &Scrape, metric: &str, want: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == metric && want.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| value(&x.value))
        .sum()
}

/// What the log says about one (model, provider).
#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    tokens: BTreeMap<&'static str, u64>,
    cost: Decimal,
    ttft: u64,
}

#[tokio::test]
async fn the_totals_per_model_equal_the_logs() {
    let mut gw = Harness::start(Storage::memory()).await;
    let (_, key) = gw.register("prometheus@example.com").await;
    let bearer = format!("Bearer {key}");
    // Every API as JSON and SSE; chat twice more; an upstream error and a cut stream.
    let mut sent = Vec::new();
    for api in ALL {
        for stream in [false, true] {
            sent.push((api, stream, None));
        }
    }
    sent.push((Chat, false, None));
    sent.push((Chat, true, None));
    sent.push((Responses, false, Some("500")));
    sent.push((Gemini, true, Some("cut")));
    for (api, stream, error) in &sent {
        let mut headers = vec![("authorization", bearer.as_str())];
        if let Some(mode) = error {
            headers.push(("x-mock-error", mode));
        }
        let body = api.body(*stream, None).to_string();
        gw.call(Method::POST, &api.path(*stream), &headers, body)
            .await;
    }
    // Every sink, the metrics' lane included, has taken every record.
    gw.flush().await;
    let rows = records(&gw, &key, "kind=request&limit=100").await;
    assert_eq!(rows.len(), sent.len());

    let answer = gw.call(Method::GET, "/metrics", &[], "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = answer.text();
    assert!(
        text.ends_with("# EOF\n"),
        "an OpenMetrics exposition ends with # EOF"
    );
    let s = scrape(&text);
    // Each sample line was understood (a histogram's buckets fold into one sample).
    let lines = text.lines().filter(|l| !l.starts_with('#')).count();
    let buckets = text.lines().filter(|l| l.contains("_bucket{")).count();
    let histograms = s
        .samples
        .iter()
        .filter(|x| matches!(x.value, Parsed::Histogram(_)))
        .count();
    assert_eq!(s.samples.len(), lines - buckets + histograms, "{text}");

    // Per model and provider.
    let mut by_model: BTreeMap<(String, String), Totals> = BTreeMap::new();
    for r in &rows {
        let key = (
            r.model.clone().unwrap(),
            r.provider.clone().unwrap().into_owned(),
        );
        let t = by_model.entry(key).or_default();
        t.requests += 1;
        let counts = [
            ("input", r.input_tokens),
            ("output", r.output_tokens),
            ("cache_read", r.cache_read_tokens),
            ("cache_write", r.cache_write_tokens),
            ("reasoning", r.reasoning_tokens),
        ];
        for (kind, n) in counts {
            *t.tokens.entry(kind).or_default() += n.unwrap_or(0);
        }
        t.cost += r.cost_usd.unwrap_or_default();
        t.ttft += u64::from(r.ttft_ms.is_some());
    }
    assert_eq!(by_model.len(), 4);
    for ((model, provider), want) in &by_model {
        let labels = [("model", model.as_str()), ("provider", provider.as_str())];
        assert_eq!(
            sum(&s, "gateway_llm_model_requests_total", &labels),
            want.requests as f64,
            "{model}"
        );
        for (kind, n) in &want.tokens {
            let labels = [labels[0], labels[1], ("type", kind)];
            assert_eq!(
                sum(&s, "gateway_llm_tokens_total", &labels),
                *n as f64,
                "{model} {kind}"
            );
        }
        // The exact decimal sum, rounded once.
        assert!(want.cost > Decimal::ZERO);
        assert_eq!(
            sum(&s, "gateway_llm_cost_usd_total", &labels),
            want.cost.to_f64().unwrap(),
            "{model}: cost"
        );
        assert_eq!(
            sum(&s, "gateway_llm_time_to_first_token_seconds_count", &labels),
            want.ttft as f64,
            "{model}: TTFT observations"
        );
    }
    // Nothing else was counted.
    let all_tokens: u64 = by_model.values().flat_map(|t| t.tokens.values()).sum();
    assert_eq!(sum(&s, "gateway_llm_tokens_total", &[]), all_tokens as f64);
    assert_eq!(
        sum(&s, "gateway_llm_model_requests_total", &[]),
        rows.len() as f64
    );

    // Per route and outcome: the counts, and the latency histograms' counts and sums.
    let mut by_route: BTreeMap<(String, &str), (u64, f64)> = BTreeMap::new();
    for r in &rows {
        let e = by_route
            .entry((route(&r.endpoint), r.outcome.as_str()))
            .or_default();
        e.0 += 1;
        e.1 += r.latency_ms.unwrap() / 1000.0;
    }
    assert!(by_route.keys().any(|(_, o)| *o == "error"));
    assert!(by_route.keys().any(|(_, o)| *o == "interrupted"));
    assert!(by_route.contains_key(&("/v1beta/models/*:streamGenerateContent".into(), "ok")));
    for ((path, outcome), (n, seconds)) in &by_route {
        let labels = [("route", path.as_str()), ("outcome", *outcome)];
        assert_eq!(
            sum(&s, "gateway_llm_requests_total", &labels),
            *n as f64,
            "{path} {outcome}"
        );
        assert_eq!(
            sum(&s, "gateway_llm_request_duration_seconds_count", &labels),
            *n as f64
        );
        let observed = sum(&s, "gateway_llm_request_duration_seconds_sum", &labels);
        assert!((observed - seconds).abs() < 1e-9, "{observed} vs {seconds}");
    }

    // The writer's counters, per sink: every request and the register event.
    for sink in [gateway::DATABASE_SINK, gateway::metrics::SINK_NAME] {
        let labels = [("sink", sink)];
        let n = (rows.len() + 1) as f64;
        assert_eq!(
            sum(&s, "activity_records_enqueued_total", &labels),
            n,
            "{sink}"
        );
        assert_eq!(
            sum(&s, "activity_records_written_total", &labels),
            n,
            "{sink}"
        );
        assert_eq!(sum(&s, "activity_records_failed_total", &labels), 0.0);
        assert_eq!(sum(&s, "activity_records_dropped_total", &labels), 0.0);
        assert_eq!(sum(&s, "activity_queue_depth", &labels), 0.0);
    }
    // The database's lane writes batches; the metrics observer reads records one by one.
    let batches = |sink| sum(&s, "activity_batches_total", &[("sink", sink)]);
    assert!(batches(gateway::DATABASE_SINK) >= 1.0);
    assert_eq!(batches(gateway::metrics::SINK_NAME), 0.0);
    gw.stop().await;
}

#[tokio::test]
async fn models_past_the_cap_are_counted_as_other() {
    let records = RecordMetrics::new();
    let writer = ActivityWriter::start(NoopSink, WriterConfig::default());
    let metrics = Metrics::new(&records, &writer);
    let extra = 5;
    let batch: Vec<ActivityRecord> = (0..MAX_MODELS + extra)
        .map(|i| {
            let mut r = ActivityRecord::new(RecordKind::Request);
            r.model = Some(format!("model-{i}"));
            r.provider = Some("Acme".into());
            r.input_tokens = Some(10);
            r.cost_usd = Some(Decimal::new(1, 6));
            r
        })
        .collect();
    batch.iter().for_each(|r| records.observe(r));
    // The budget's refusals arrive as `budget.refused` events; other events count nothing.
    let event = |name: &str, status: u16| {
        let mut r = ActivityRecord::new(RecordKind::Event);
        r.endpoint = name.to_owned().into();
        r.status_code = Some(status);
        r
    };
    let events = [
        event("budget.refused", 402),
        event("budget.refused", 402),
        event("budget.refused", 429),
        event("budget.threshold", 200),
        event("auth.login", 429),
    ];
    events.iter().for_each(|r| records.observe(r));

    let s = scrape(&metrics.render());
    let models: std::collections::BTreeSet<&str> = s
        .samples
        .iter()
        .filter(|x| x.metric == "gateway_llm_model_requests_total")
        .filter_map(|x| x.labels.get("model"))
        .collect();
    assert_eq!(models.len(), MAX_MODELS + 1, "the cap, and `other`");
    let other = [("model", OTHER)];
    assert_eq!(
        sum(&s, "gateway_llm_model_requests_total", &other),
        extra as f64
    );
    assert_eq!(
        sum(&s, "gateway_llm_tokens_total", &[]),
        (10 * (MAX_MODELS + extra)) as f64,
        "nothing is lost in the folding"
    );
    let cost = Decimal::new((MAX_MODELS + extra) as i64, 6);
    let counted = sum(&s, "gateway_llm_cost_usd_total", &[]);
    assert!((counted - cost.to_f64().unwrap()).abs() < 1e-12);
    assert_eq!(
        sum(&s, "gateway_llm_cost_usd_total", &other),
        Decimal::new(extra as i64, 6).to_f64().unwrap()
    );
    let refusals = |status| sum(&s, "gateway_budget_refusals_total", &[("status", status)]);
    assert_eq!((refusals("402"), refusals("429")), (2.0, 1.0));
    writer.shutdown(Duration::from_secs(1)).await;
}

/// A sink that fails (transiently) while `down` is set, storing into `inner` otherwise.
#[derive(Clone, Default)]
struct Switchable {
    inner: tower_activity::sink::MemorySink,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl ActivitySink for Switchable {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), tower_activity::SinkError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tower_activity::SinkError::transient("the sink is down"));
        }
        self.inner.write(records).await
    }
}

/// Each of the spool's metrics is the writer's counter (and not zero: each is exercised): a
/// sink outage fills the spool to its disk bound (records synced, bytes, records dropped),
/// and the next writer on the same directory replays what was left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_counters_are_on_metrics() {
    use std::sync::atomic::Ordering::SeqCst;
    use tower_activity::SpoolConfig;

    let dir = std::env::temp_dir().join(format!("gw-spool-metrics-{}", uuid::Uuid::now_v7()));
    let spool = SpoolConfig::new(&dir)
        .with_sync_interval(Duration::from_millis(10))
        .with_segment_bytes(8_000)
        .with_max_bytes(16_000);
    let config = WriterConfig::default()
        .with_batch_interval(Duration::from_millis(20))
        .with_retry_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20))
        .with_queue_capacity(64)
        .with_spool(spool);
    let sink = Switchable::default();
    sink.down.store(true, SeqCst);
    let writer = ActivityWriter::try_start(sink.clone(), config.clone()).unwrap();
    let metrics = Metrics::new(&RecordMetrics::new(), &writer);
    let sent = 500;
    for i in 0..sent {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.input_tokens = Some(i);
        writer.record(r);
        if i % 32 == 31 {
            tokio::task::yield_now().await;
        }
    }
    while {
        let s = writer.stats();
        s.spooled + s.spool_full + s.dropped_queue_full < sent
    } {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = writer.stats();
    let s = scrape(&metrics.render());
    let of = |metric: &str| sum(&s, metric, &[("sink", "default")]);
    assert!(
        stats.spooled > 0 && stats.spool_full > 0 && stats.spool_bytes > 0,
        "{stats:?}"
    );
    assert_eq!(of("activity_spool_records_total"), stats.spooled as f64);
    assert_eq!(
        of("activity_spool_dropped_records_total"),
        stats.spool_full as f64
    );
    assert_eq!(of("activity_spool_bytes"), stats.spool_bytes as f64);
    assert_eq!(of("activity_spool_replayed_records_total"), 0.0);
    writer.shutdown(Duration::from_millis(100)).await;

    // A restart: the next writer replays the spool into the sink, now up.
    sink.down.store(false, SeqCst);
    let writer = ActivityWriter::try_start(sink.clone(), config).unwrap();
    let metrics = Metrics::new(&RecordMetrics::new(), &writer);
    writer.flush().await;
    let stats = writer.shutdown(Duration::from_secs(5)).await;
    let s = scrape(&metrics.render());
    let of = |metric: &str| sum(&s, metric, &[("sink", "default")]);
    assert!(stats.replayed > 0, "{stats:?}");
    assert_eq!(
        of("activity_spool_replayed_records_total"),
        stats.replayed as f64
    );
    assert_eq!(
        sink.inner.len() as u64,
        stats.replayed,
        "what was spooled is written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
