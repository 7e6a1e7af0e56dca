//! The dashboard's server side (`examples/support/dashboard/`): the page and its assets, and
//! the live feed `GET /user/activity/stream` fed by a `BroadcastSink` behind the real
//! `ActivityWriter`.
//!
//! The routes are mounted on a small stand-in for the gateway: Bearer API key → user id,
//! exactly the contract the gateway gives the feed.

#[path = "../examples/support/dashboard/mod.rs"]
mod dashboard;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tower_activity::{
    ActivityRecord, ActivitySink, ActivityWriter, BroadcastSink, Kind, MemorySink, WriterConfig,
};

#[derive(Clone)]
struct Gateway {
    sink: BroadcastSink<MemorySink>,
    keys: Arc<HashMap<&'static str, &'static str>>,
}

/// The stand-in gateway's stream route: authenticate, then hand over to the dashboard.
async fn stream(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match key.and_then(|k| gw.keys.get(k)) {
        Some(user) => dashboard::live::stream(user.to_string(), gw.sink.subscribe()),
        None => (StatusCode::UNAUTHORIZED, "missing or unknown API key").into_response(),
    }
}

fn gateway(sink: BroadcastSink<MemorySink>) -> Router {
    let keys = HashMap::from([("key-alice", "alice"), ("key-bob", "bob")]);
    let state = Gateway {
        sink,
        keys: Arc::new(keys),
    };
    Router::new()
        .route("/user/activity/stream", get(stream))
        .with_state(state)
        .merge(dashboard::routes())
}

fn get_request(path: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    request.body(Body::empty()).unwrap()
}

fn record(user: &str) -> ActivityRecord {
    let mut record = ActivityRecord::new(Kind::Request);
    record.user_id = Some(user.to_owned());
    record.model = Some("gpt-4o-mini".to_owned());
    record.cost_usd = Some("0.0000325".parse().unwrap());
    record
}

/// One parsed SSE event.
#[derive(Debug)]
struct Event {
    event: String,
    id: Option<String>,
    data: String,
}

/// Reads SSE events from a response body, whatever its framing.
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    fn new(response: Response) -> Self {
        Events {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when nothing comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Event> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(event) = parse(&block) {
                        return event;
                    }
                    continue;
                }
                let frame = self.body.frame().await.expect("stream ended").unwrap();
                if let Ok(data) = frame.into_data() {
                    self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        })
        .await
        .ok()
    }

    async fn expect(&mut self) -> Event {
        self.next(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }
}

fn parse(block: &str) -> Option<Event> {
    let mut event = Event {
        event: "message".into(),
        id: None,
        data: String::new(),
    };
    let mut any = false;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => continue, // a comment (keep-alive)
            "event" => event.event = value.into(),
            "id" => event.id = Some(value.into()),
            "data" => event.data.push_str(value),
            _ => {}
        }
        any = true;
    }
    any.then_some(event)
}

async fn subscribe(app: &Router, key: &str) -> Events {
    let response = app
        .clone()
        .oneshot(get_request("/user/activity/stream", Some(key)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut events = Events::new(response);
    assert_eq!(events.expect().await.event, "ready");
    events
}

fn fast_writer(sink: BroadcastSink<MemorySink>) -> ActivityWriter {
    let config = WriterConfig::default().with_batch_interval(Duration::from_millis(5));
    ActivityWriter::start(sink, config)
}

#[tokio::test]
async fn a_stored_record_reaches_its_owner_and_never_another_user() {
    let sink = BroadcastSink::new(MemorySink::new());
    let app = gateway(sink.clone());
    let mut alice = subscribe(&app, "key-alice").await;
    let mut bob = subscribe(&app, "key-bob").await;
    let writer = fast_writer(sink.clone());

    let (for_bob, for_alice) = (record("bob"), record("alice"));
    writer.record(for_bob.clone());
    writer.record(record("carol"));
    writer.record(for_alice.clone());

    let event = alice.expect().await;
    assert_eq!(event.event, "activity");
    assert_eq!(event.id.as_deref(), Some(for_alice.id.to_string().as_str()));
    let sent: ActivityRecord = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        sent, for_alice,
        "the event is the stored record, field for field"
    );
    let json: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        json["cost_usd"], "0.0000325",
        "money stays a decimal string"
    );
    assert!(
        sink.inner().records().contains(&for_alice),
        "stored before sent"
    );

    let event = bob.expect().await;
    assert_eq!(event.id, Some(for_bob.id.to_string()));
    for events in [&mut alice, &mut bob] {
        let more = events.next(Duration::from_millis(300)).await;
        assert!(more.is_none(), "nobody else's records: {more:?}");
    }
    writer.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_stream_requires_a_valid_api_key() {
    let app = gateway(BroadcastSink::new(MemorySink::new()));
    for key in [None, Some("key-mallory")] {
        let response = app
            .clone()
            .oneshot(get_request("/user/activity/stream", key))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{key:?}");
    }
}

#[tokio::test]
async fn a_lagging_stream_says_how_many_it_missed_then_goes_on() {
    let sink = BroadcastSink::with_capacity(MemorySink::new(), 2);
    let app = gateway(sink.clone());
    let mut alice = subscribe(&app, "key-alice").await;
    let batch: Vec<_> = (0..5).map(|_| record("alice")).collect();
    sink.write(&batch).await.unwrap();

    let event = alice.expect().await;
    assert_eq!(
        (event.event.as_str(), event.data.as_str()),
        ("lagged", r#"{"missed":3}"#)
    );
    for expected in &batch[3..] {
        assert_eq!(alice.expect().await.id, Some(expected.id.to_string()));
    }
}

#[tokio::test]
async fn the_stream_ends_when_the_sink_is_gone() {
    let sink = BroadcastSink::new(MemorySink::new());
    let app = gateway(sink.clone());
    let alice = subscribe(&app, "key-alice").await;
    drop((app, sink));
    let mut body = alice.body;
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame()).await;
    assert!(matches!(end, Ok(None)), "the body ends: {end:?}");
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_content_types() {
    let app = gateway(BroadcastSink::new(MemorySink::new()));
    for (path, content_type, needle) in [
        ("/dashboard/activity", "text/html; charset=utf-8", "<title>"),
        (
            "/dashboard/activity/app.js",
            "text/javascript; charset=utf-8",
            "/user/activity/stream",
        ),
        (
            "/dashboard/activity/app.css",
            "text/css; charset=utf-8",
            ":root",
        ),
    ] {
        let response = app.clone().oneshot(get_request(path, None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = std::str::from_utf8(&body).unwrap();
        assert!(body.contains(needle), "{path} has {needle}");
        // Nothing from elsewhere: no CDN, no external font, no absolute URL.
        for external in ["http://", "https://", "src=\"//", "href=\"//", "@import"] {
            let allowed = "http://www.w3.org/2000/svg";
            assert!(
                !body.replace(allowed, "").contains(external),
                "{path} refers to {external}"
            );
        }
    }
}
