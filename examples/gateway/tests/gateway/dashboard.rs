//! The dashboard's server side (`src/dashboard/`) as the example gateway mounts
//! it: the page and its assets, and the live feed `GET /user/activity/stream`, from a request
//! through the gateway to the event on the caller's stream (layer → writer → `BroadcastSink`
//! → SSE). The feed's lag and end are tested on `live::stream` directly, with a small channel.

use std::time::Duration;

use crate::harness::Harness;
use bytes::Bytes;
use gateway::{Storage, dashboard};
use http::{Method, StatusCode, header};
use http_body::Body;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower_activity::sink::{BroadcastSink, MemorySink};
use tower_activity::{ActivityRecord, ActivitySink, RecordKind};

const PROMPT: &str = "Count the tokens of this prompt, please.";

fn record(user: &str) -> ActivityRecord {
    let mut record = ActivityRecord::new(RecordKind::Request);
    record.user_id = Some(user.to_owned());
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
struct Events<B> {
    body: B,
    buffer: String,
}

impl<B> Events<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    fn new(response: http::Response<B>) -> Self {
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

/// A stream for `key` through the gateway, its `ready` event read.
async fn subscribe(h: &Harness, key: &str) -> Events<hyper::body::Incoming> {
    let auth = format!("Bearer {key}");
    let response = h
        .send(
            Method::GET,
            "/user/activity/stream",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut events = Events::new(response);
    assert_eq!(events.expect().await.event, "ready");
    events
}

/// A request through the gateway; returns the id of its record (`x-activity-id`).
async fn chat(h: &Harness, key: &str, model: &str, stream: bool) -> String {
    let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]});
    let answer = h.post("/v1/chat/completions", key, &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.headers["x-activity-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_stored_record_reaches_its_owner_and_never_another_user() {
    let h = Harness::start(Storage::memory()).await;
    let (alice_id, alice_key) = h.register("alice@example.com").await;
    let (_, bob_key) = h.register("bob@example.com").await;
    h.flush().await; // the register events are stored before anyone subscribes
    let mut alice = subscribe(&h, &alice_key).await;
    let mut bob = subscribe(&h, &bob_key).await;

    let id = chat(&h, &alice_key, "gpt-4o-mini", true).await;
    let event = alice.expect().await;
    assert_eq!(event.event, "activity");
    assert_eq!(event.id.as_deref(), Some(id.as_str()));
    let sent: ActivityRecord = serde_json::from_str(&event.data).unwrap();
    assert_eq!(sent.user_id.as_deref(), Some(alice_id.as_str()));
    assert_eq!(
        (sent.model.as_deref(), sent.stream),
        (Some("gpt-4o-mini"), true)
    );
    assert_eq!(sent.output_tokens, Some(24));
    // The event is the row the log returns, money as the same decimal string.
    let log = h.log(&alice_key, "limit=1").await;
    assert_eq!(log["logs"][0]["id"], id.as_str());
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert!(data["cost_usd"].is_string());
    assert_eq!(data["cost_usd"], log["logs"][0]["cost_usd"]);
    let nothing = bob.next(Duration::from_millis(300)).await;
    assert!(
        nothing.is_none(),
        "bob sees none of alice's records: {nothing:?}"
    );

    let id = chat(&h, &bob_key, "gpt-4o", false).await;
    assert_eq!(bob.expect().await.id, Some(id));
    let nothing = alice.next(Duration::from_millis(300)).await;
    assert!(
        nothing.is_none(),
        "alice sees none of bob's records: {nothing:?}"
    );
}

#[tokio::test]
async fn the_stream_requires_a_valid_api_key() {
    let h = Harness::start(Storage::memory()).await;
    for auth in [None, Some("Bearer sk-gw-0000"), Some("Basic YWxpY2U6")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let answer = h
            .call(Method::GET, "/user/activity/stream", &headers, "")
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(answer.json()["error"]["type"], "unauthorized", "{auth:?}");
    }
}

#[tokio::test]
async fn a_lagging_stream_says_how_many_it_missed_then_goes_on() {
    let sink = BroadcastSink::with_capacity(MemorySink::new(), 2);
    let response = dashboard::live::stream("alice".into(), sink.subscribe());
    let mut alice = Events::new(response);
    assert_eq!(alice.expect().await.event, "ready");
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
    let mut alice = Events::new(dashboard::live::stream("alice".into(), sink.subscribe()));
    assert_eq!(alice.expect().await.event, "ready");
    drop(sink);
    let end = tokio::time::timeout(Duration::from_secs(5), alice.body.frame()).await;
    assert!(matches!(end, Ok(None)), "the body ends: {end:?}");
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_content_types() {
    let h = Harness::start(Storage::memory()).await;
    let js = "text/javascript; charset=utf-8";
    for (path, content_type, needle) in [
        ("/dashboard/activity", "text/html; charset=utf-8", "<title>"),
        (
            "/dashboard/activity/app.css",
            "text/css; charset=utf-8",
            ":root",
        ),
        ("/dashboard/activity/app.mjs", js, "/user/activity/log"),
        ("/dashboard/activity/charts.mjs", js, "renderDaily"),
        ("/dashboard/activity/detail.mjs", js, "cost_details"),
        ("/dashboard/activity/dom.mjs", js, "createElementNS"),
        ("/dashboard/activity/feed.mjs", js, "Authorization"),
        ("/dashboard/activity/format.mjs", js, "BigInt"),
    ] {
        let answer = h.call(Method::GET, path, &[], "").await;
        assert_eq!(answer.status, StatusCode::OK, "{path} needs no key");
        let headers = &answer.headers;
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        let body = answer.text();
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
