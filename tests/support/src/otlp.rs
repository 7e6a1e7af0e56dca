//! [`OtlpReceiver`]: an OTLP/HTTP collector for tests — a small hyper server that decodes
//! what it receives with `opentelemetry-proto`, keeps it, and answers with a chosen status.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_activity::{ActivityRecord, Outcome};

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    /// Requests answered with an error status, or that did not decode.
    refused: usize,
}

/// A collector listening on `127.0.0.1` that keeps every export it accepts.
pub struct OtlpReceiver {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    status: Arc<AtomicU16>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts a receiver that answers 200.
    pub async fn start() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Received::default()));
        let status = Arc::new(AtomicU16::new(200));
        let (r, s) = (Arc::clone(&received), Arc::clone(&status));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, s) = (Arc::clone(&r), Arc::clone(&s));
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| handle(req, Arc::clone(&r), Arc::clone(&s)));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        OtlpReceiver {
            addr,
            received,
            status,
            task,
        }
    }

    /// The base URL to give an exporter (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers every later export with `status` (a 2xx keeps what it receives).
    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().unwrap();
        received
            .traces
            .iter()
            .flat_map(|t| &t.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }

    /// Every trace export request received so far (resource and scope included).
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.received.lock().unwrap().traces.clone()
    }

    /// Every metric export request received so far.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.received.lock().unwrap().metrics.clone()
    }

    /// How many requests were answered with an error status.
    pub fn refused(&self) -> usize {
        self.received.lock().unwrap().refused
    }

    /// Waits (at most `limit`) until at least `n` spans arrived; returns them all.
    pub async fn wait_for_spans(&self, n: usize, limit: Duration) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let spans = self.spans();
            if spans.len() >= n || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops listening: the next exports find the port closed.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    req: Request<Incoming>,
    received: Arc<Mutex<Received>>,
    status: Arc<AtomicU16>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = StatusCode::from_u16(status.load(Ordering::SeqCst)).expect("a valid status");
    let mut r = received.lock().unwrap();
    let decoded = match path.as_str() {
        "/v1/traces" => ExportTraceServiceRequest::decode(body)
            .map(|t| status.is_success().then(|| r.traces.push(t)))
            .is_ok(),
        "/v1/metrics" => ExportMetricsServiceRequest::decode(body)
            .map(|m| status.is_success().then(|| r.metrics.push(m)))
            .is_ok(),
        _ => false,
    };
    let status = if decoded {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    if !status.is_success() {
        r.refused += 1;
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}

/// A base URL where nothing listens (a collector that is down).
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    format!("http://{addr}")
}

/// The value of attribute `key`, if present.
pub fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// The string attribute `key` of `span`.
pub fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(&span.attributes, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The integer attribute `key` of `span`.
pub fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(&span.attributes, key)? {
        Value::IntValue(n) => Some(*n),
        _ => None,
    }
}

/// The latest cumulative value of counter `name` for each set of attributes, as
/// (`attribute key=value` pairs sorted, value).
pub fn counter_points(
    requests: &[ExportMetricsServiceRequest],
    name: &str,
) -> Vec<(Vec<(String, String)>, f64)> {
    let mut latest: Vec<(Vec<(String, String)>, f64)> = Vec::new();
    let metrics = requests
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter(|m| m.name == name);
    for metric in metrics {
        let Some(Data::Sum(sum)) = &metric.data else {
            continue;
        };
        for point in &sum.data_points {
            use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as N;
            let value = match point.value {
                Some(N::AsDouble(v)) => v,
                Some(N::AsInt(v)) => v as f64,
                None => continue,
            };
            let mut key: Vec<(String, String)> = point
                .attributes
                .iter()
                .map(|kv| (kv.key.clone(), format!("{:?}", kv.value)))
                .collect();
            key.sort();
            latest.retain(|(k, _)| *k != key);
            latest.push((key, value));
        }
    }
    latest
}

/// The sum of the histogram `name`'s latest cumulative points whose attribute `key` is
/// `value` (all points when `key` is empty).
pub fn histogram_sum(
    requests: &[ExportMetricsServiceRequest],
    name: &str,
    key: &str,
    value: &str,
) -> f64 {
    let mut latest: Vec<(Vec<String>, f64)> = Vec::new();
    let metrics = requests
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter(|m| m.name == name);
    for metric in metrics {
        let Some(Data::Histogram(h)) = &metric.data else {
            continue;
        };
        for point in &h.data_points {
            let matches = key.is_empty()
                || matches!(attr(&point.attributes, key), Some(Value::StringValue(s)) if s == value);
            if !matches {
                continue;
            }
            let mut id: Vec<String> = point
                .attributes
                .iter()
                .map(|kv| format!("{}={:?}", kv.key, kv.value))
                .collect();
            id.sort();
            latest.retain(|(k, _)| *k != id);
            latest.push((id, point.sum.unwrap_or(0.0)));
        }
    }
    latest.iter().map(|(_, sum)| sum).sum()
}

/// Lower-case hex of `bytes` (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos() as u64
}

/// Checks that `span` says what its log row `row` says: the id, every token count (absent
/// when unknown, never 0), the exact cost string, model, provider, outcome, status code,
/// attribution, the request's own timing, and status `ERROR` exactly for failed outcomes.
pub fn assert_span_is_row(span: &Span, row: &ActivityRecord) {
    let id = row.id.to_string();
    assert_eq!(str_attr(span, "activity.id"), Some(id.as_str()));
    let tokens = [
        ("gen_ai.usage.input_tokens", row.input_tokens),
        ("gen_ai.usage.output_tokens", row.output_tokens),
        (
            "gen_ai.usage.cache_read.input_tokens",
            row.cache_read_tokens,
        ),
        (
            "gen_ai.usage.cache_creation.input_tokens",
            row.cache_write_tokens,
        ),
        ("gen_ai.usage.reasoning.output_tokens", row.reasoning_tokens),
    ];
    for (key, want) in tokens {
        // Unknown is absent, never 0.
        assert_eq!(int_attr(span, key), want.map(|n| n as i64), "{id}: {key}");
    }
    let cost = row.cost_usd.map(|c| c.to_string());
    assert_eq!(
        str_attr(span, "gen_ai.usage.cost.amount"),
        cost.as_deref(),
        "{id}: cost"
    );
    assert_eq!(
        str_attr(span, "gen_ai.usage.cost.currency"),
        cost.as_ref().map(|_| "USD")
    );
    assert_eq!(str_attr(span, "gen_ai.request.model"), row.model.as_deref());
    assert_eq!(
        str_attr(span, "gen_ai.response.model"),
        row.model.as_deref()
    );
    assert_eq!(str_attr(span, "activity.model"), row.model.as_deref());
    assert_eq!(str_attr(span, "activity.provider"), row.provider.as_deref());
    assert_eq!(
        str_attr(span, "activity.outcome"),
        Some(row.outcome.as_str())
    );
    assert_eq!(
        int_attr(span, "http.response.status_code"),
        row.status_code.map(i64::from)
    );
    assert_eq!(str_attr(span, "activity.user_id"), row.user_id.as_deref());
    assert_eq!(
        str_attr(span, "activity.session_id"),
        row.session_id.as_deref()
    );
    // The request's own timing.
    let start: SystemTime = row.timestamp.into();
    assert_eq!(span.start_time_unix_nano, nanos(start), "{id}: start");
    let took = span.end_time_unix_nano - span.start_time_unix_nano;
    let latency_ns = (row.latency_ms.expect("a latency") * 1e6) as i64;
    assert!(
        (took as i64 - latency_ns).abs() <= 1_000,
        "{id}: the span lasts latency_ms ({took} ns vs {latency_ns} ns)"
    );
    // Status ERROR exactly for failed outcomes; an error carries the provider's error type.
    let status = span.status.as_ref().map(|s| s.code).unwrap_or(0);
    match row.outcome {
        Outcome::Error => {
            assert_eq!(status, 2, "{id}: status ERROR");
            let want = row
                .error
                .as_ref()
                .and_then(|e| e.kind.clone())
                .or_else(|| row.status_code.map(|s| s.to_string()));
            assert!(want.is_some(), "{id}: an error names its type");
            assert_eq!(str_attr(span, "error.type").map(str::to_owned), want);
        }
        Outcome::Interrupted => {
            assert_eq!(status, 2, "{id}: status ERROR");
            let want = row.error.as_ref().and_then(|e| e.kind.as_deref());
            assert_eq!(
                str_attr(span, "error.type"),
                Some(want.unwrap_or("interrupted")),
                "{id}: not the 200 the stream started with"
            );
        }
        Outcome::Ok | Outcome::Cancelled => {
            assert_eq!(status, 0, "{id}: status unset");
            assert_eq!(str_attr(span, "error.type"), None);
        }
    }
}
