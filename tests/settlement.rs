//! The settlement hook: an outer layer's `Settlement` in the request extensions receives the
//! very record the writer gets, exactly once, however the exchange ends; one nobody completes
//! is released.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use testkit::framed::{Ending, FramedBody};
use tower::{Layer, ServiceExt, service_fn};
use tower_activity::sink::MemorySink;
use tower_activity::{
    ActivityLayer, ActivityRecord, ActivityRequestBody, Outcome, Settle, Settlement,
};

#[derive(Debug, PartialEq)]
enum Seen {
    Settled(Box<ActivityRecord>),
    Released,
}

struct Probe(Arc<Mutex<Vec<Seen>>>);

impl Settle for Probe {
    fn settle(self: Box<Self>, record: &ActivityRecord) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::Settled(Box::new(record.clone())));
    }
    fn release(self: Box<Self>) {
        self.0.lock().unwrap().push(Seen::Released);
    }
}

const JSON: &str = r#"{"model":"gpt-4o","choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
const SSE: &str = "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n\
                   data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                   data: [DONE]\n\n";

/// How the inner service answers.
#[derive(Clone, Copy)]
enum Answer {
    Json,
    Stream,
    Fails,
}

fn request(seen: &Arc<Mutex<Vec<Seen>>>) -> Request<Full<Bytes>> {
    let mut req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        )))
        .unwrap();
    req.extensions_mut()
        .insert(Settlement::new(Probe(seen.clone())));
    req
}

type Inner = tower::util::BoxCloneService<
    Request<ActivityRequestBody<Full<Bytes>>>,
    Response<FramedBody>,
    &'static str,
>;

fn inner(answer: Answer) -> Inner {
    tower::util::BoxCloneService::new(service_fn(
        move |req: Request<ActivityRequestBody<Full<Bytes>>>| async move {
            // The layer took the settlement: nothing further in can complete it twice.
            assert!(req.extensions().get::<Settlement>().is_none());
            let (body, content_type) = match answer {
                Answer::Json => (JSON, "application/json"),
                Answer::Stream => (SSE, "text/event-stream"),
                Answer::Fails => return Err("upstream down"),
            };
            Ok(Response::builder()
                .header("content-type", content_type)
                .body(FramedBody::new(body, 16, Ending::Plain))
                .unwrap())
        },
    ))
}

/// The one record in the sink, which must equal the one settled.
async fn only_record(layer: &ActivityLayer, sink: &MemorySink, seen: &Mutex<Vec<Seen>>) {
    layer.writer().flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        [Seen::Settled(Box::new(records[0].clone()))]
    );
}

#[tokio::test]
async fn settled_once_with_the_written_record_however_the_exchange_ends() {
    for (answer, read_body, want) in [
        (Answer::Json, true, Outcome::Ok),
        (Answer::Stream, true, Outcome::Ok),
        (Answer::Stream, false, Outcome::Cancelled),
        (Answer::Fails, false, Outcome::Error),
    ] {
        let sink = MemorySink::new();
        let layer = ActivityLayer::new(sink.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let result = layer.layer(inner(answer)).oneshot(request(&seen)).await;
        if let Ok(response) = result {
            assert!(seen.lock().unwrap().is_empty(), "settled before the body");
            let mut body = response.into_body();
            if read_body {
                body.collect().await.expect("the whole body");
            } else {
                body.frame().await.expect("a frame").expect("no error");
                drop(body);
            }
        }
        only_record(&layer, &sink, &seen).await;
        let Seen::Settled(record) = &seen.lock().unwrap()[0] else {
            unreachable!()
        };
        assert_eq!(record.outcome, want);
    }
}

#[tokio::test]
async fn dropped_before_the_response_head_settles_as_cancelled() {
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let never = service_fn(|_req: Request<ActivityRequestBody<Full<Bytes>>>| async {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>().await
    });
    let future = layer.layer(never).oneshot(request(&seen));
    // Polled once (the body is read and the inner service called), then dropped.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(10), future)
            .await
            .is_err()
    );
    only_record(&layer, &sink, &seen).await;
    let Seen::Settled(record) = &seen.lock().unwrap()[0] else {
        unreachable!()
    };
    assert_eq!(record.outcome, Outcome::Cancelled);
}

#[tokio::test]
async fn without_an_activity_layer_the_settlement_is_released() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let plain = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    plain.oneshot(request(&seen)).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [Seen::Released]);
}
