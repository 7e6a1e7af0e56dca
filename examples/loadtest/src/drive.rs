//! The open-loop driver: request `i` is dispatched at `start + i / rps` by a timer, whatever
//! happened to the requests before it, and its latency is measured from its dispatch — before
//! it waits for a free connection. A server stall therefore shows up in the percentiles
//! instead of silently slowing the generator down (coordinated omission).
//!
//! Latency counts from the dispatch, not from the ideal due instant: Tokio's timer wakes up to
//! a millisecond late, and that lateness belongs to the generator, not to the server (it
//! would add the same ~0.5 ms to every variant and drown the differences). The lateness is
//! reported separately (`schedule_lag_p99_us`); dispatch never waits for responses.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::args::Mode;

/// One request kind the run sends.
#[derive(Debug, Clone)]
pub struct Template {
    pub path: String,
    pub body: Bytes,
    pub stream: bool,
}

/// The requests of a mode, sent in turn.
///
/// `include_usage`: OpenAI chat streams ask for usage themselves, so the layer has nothing to
/// inject and strip (this isolates the cost of that rewrite).
pub fn templates(mode: Mode, model: &str, include_usage: bool) -> Vec<Template> {
    let prompt = "Say hello to the load test, briefly.";
    let chat = |stream: bool| {
        let mut body = serde_json::json!({
            "model": model, "stream": stream, "max_tokens": 16,
            "messages": [{"role": "user", "content": prompt}],
        });
        if stream && include_usage {
            body["stream_options"] = serde_json::json!({"include_usage": true});
        }
        Template {
            path: "/v1/chat/completions".into(),
            body: body.to_string().into(),
            stream,
        }
    };
    match mode {
        Mode::Json => vec![chat(false)],
        Mode::Sse => vec![chat(true)],
        Mode::Mix => {
            let mut all = vec![chat(false), chat(true)];
            for stream in [false, true] {
                all.push(Template {
                    path: "/v1/responses".into(),
                    body: serde_json::json!({"model": "gpt-4o-mini", "stream": stream,
                        "input": prompt, "max_output_tokens": 16})
                    .to_string()
                    .into(),
                    stream,
                });
                all.push(Template {
                    path: "/v1/messages".into(),
                    body: serde_json::json!({"model": "claude-3-5-haiku-20241022",
                        "stream": stream, "max_tokens": 16,
                        "messages": [{"role": "user", "content": prompt}]})
                    .to_string()
                    .into(),
                    stream,
                });
                let method = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                all.push(Template {
                    path: format!("/v1beta/models/gemini-2.0-flash:{method}"),
                    body: serde_json::json!({"contents": [{"role": "user",
                        "parts": [{"text": prompt}]}],
                        "generationConfig": {"maxOutputTokens": 16}})
                    .to_string()
                    .into(),
                    stream,
                });
            }
            all
        }
    }
}

/// What happened to one request.
#[derive(Debug)]
pub struct Shot {
    /// Dispatch to the end of the response body.
    pub latency: Duration,
    /// Dispatch to the first byte of the response body.
    pub ttfb: Option<Duration>,
    /// How late the timer dispatched it after its due instant.
    pub lag: Duration,
    /// Whether it was a streaming request.
    pub stream: bool,
    /// The HTTP status, `None` when no response came.
    pub status: Option<u16>,
    /// The `x-activity-id` the gateway answered with.
    pub record_id: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Whether it was sent during the warm-up.
    pub warmup: bool,
}

/// The schedule of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub base_url: String,
    pub bearer: Option<String>,
    pub rps: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
    pub templates: Vec<Template>,
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled HTTP/1 client with `TCP_NODELAY`, shared by every request of a run.
pub fn client(connections: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Runs the plan; returns every shot (warm-up ones marked) and the measured wall time.
pub async fn run(client: &HttpClient, plan: &Plan) -> (Vec<Shot>, Duration) {
    let interval = 1.0 / plan.rps;
    let warmup_n = (plan.warmup.as_secs_f64() * plan.rps).round() as u64;
    let total = warmup_n + (plan.duration.as_secs_f64() * plan.rps).round() as u64;
    let slots = Arc::new(Semaphore::new(plan.connections));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let start = Instant::now() + Duration::from_millis(5);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 * interval);
        tokio::time::sleep_until(due).await;
        let sent = Instant::now();
        let lag = sent.saturating_duration_since(due);
        let template = &plan.templates[i as usize % plan.templates.len()];
        let request = build(plan, template);
        let (client, slots, tx) = (client.clone(), slots.clone(), tx.clone());
        let stream = template.stream;
        tokio::spawn(async move {
            // Waiting for a slot counts: the request was sent at `sent`.
            let _slot = slots.acquire_owned().await;
            let mut shot = send(&client, request, sent).await;
            shot.lag = lag;
            shot.stream = stream;
            shot.warmup = i < warmup_n;
            let _ = tx.send(shot);
        });
    }
    drop(tx);
    let mut shots = Vec::with_capacity(total as usize);
    while let Some(shot) = rx.recv().await {
        shots.push(shot);
    }
    let measured_start = start + plan.warmup;
    (shots, measured_start.elapsed())
}

fn build(plan: &Plan, template: &Template) -> Request<Full<Bytes>> {
    let mut request = Request::post(format!("{}{}", plan.base_url, template.path))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(template.body.clone()))
        .expect("a valid request");
    if let Some(key) = &plan.bearer {
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}")) {
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
    }
    request
}

async fn send(client: &HttpClient, request: Request<Full<Bytes>>, sent: Instant) -> Shot {
    let mut shot = Shot {
        latency: Duration::ZERO,
        ttfb: None,
        lag: Duration::ZERO,
        stream: false,
        status: None,
        record_id: None,
        error: None,
        warmup: false,
    };
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            shot.status = Some(status.as_u16());
            shot.record_id = response
                .headers()
                .get("x-activity-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = response.into_body();
            loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if shot.ttfb.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                            shot.ttfb = Some(sent.elapsed());
                        }
                    }
                    Some(Err(e)) => {
                        shot.error = Some(format!("body: {e}"));
                        break;
                    }
                    None => break,
                }
            }
            if shot.error.is_none() && !status.is_success() {
                shot.error = Some(format!("status {status}"));
            }
        }
        Err(e) => shot.error = Some(format!("request: {e}")),
    }
    shot.latency = sent.elapsed();
    shot
}
