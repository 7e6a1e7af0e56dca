//! Who a record belongs to: request extensions, the hook, response extensions, and events.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRequestBody, Attribution, RecordKind, Upstream};

const REPLY: &str = r#"{"model":"gpt-4o","choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;

async fn call(
    layer: &ActivityLayer,
    request: Request<Full<Bytes>>,
    upstream: Option<&'static str>,
) {
    let service = layer.layer(service_fn(
        move |_req: Request<ActivityRequestBody<Full<Bytes>>>| async move {
            let mut response = Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(REPLY.as_bytes())))
                .expect("valid");
            if let Some(u) = upstream {
                response.extensions_mut().insert(Upstream(u.to_owned()));
                response
                    .extensions_mut()
                    .insert(Attribution::default().session("from-handler"));
            }
            Ok::<_, Infallible>(response)
        },
    ));
    let response = service.oneshot(request).await.expect("infallible");
    response.into_body().collect().await.expect("body");
}

fn chat() -> http::request::Builder {
    Request::post("/v1/chat/completions").header("content-type", "application/json")
}

#[tokio::test]
async fn request_extensions_then_hook_then_response_extensions() {
    let sink = MemorySink::new();
    let layer = ActivityLayer::builder(sink.clone())
        .attribution(|parts| {
            let user = parts.headers.get("x-user")?.to_str().ok()?;
            Some(Attribution::user(user).app("Hooked"))
        })
        .build();

    // The app's auth middleware put an Attribution in the extensions: it wins over the hook.
    let mut req = chat()
        .header("x-user", "hook-user")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    req.extensions_mut().insert(
        Attribution::user("u_1")
            .session("s_1")
            .app("Chat")
            .tag("team", "search"),
    );
    call(&layer, req, None).await;

    // No extension: the hook derives it from the headers.
    let req = chat()
        .header("x-user", "u_2")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    call(&layer, req, Some("https://api.openai.com")).await;

    // Neither: unattributed, app defaults to "API".
    call(
        &layer,
        chat().body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
        None,
    )
    .await;

    layer.writer().flush().await;
    let rows = sink.records();
    assert_eq!(rows.len(), 3);
    let first = rows
        .iter()
        .find(|r| r.user_id.as_deref() == Some("u_1"))
        .expect("u_1");
    assert_eq!(first.session_id.as_deref(), Some("s_1"));
    assert_eq!(first.app, "Chat");
    assert_eq!(first.metadata["team"], "search");
    let second = rows
        .iter()
        .find(|r| r.user_id.as_deref() == Some("u_2"))
        .expect("u_2");
    assert_eq!(second.app, "Hooked");
    assert_eq!(second.upstream.as_deref(), Some("https://api.openai.com"));
    assert_eq!(
        second.session_id.as_deref(),
        Some("from-handler"),
        "response extensions fill gaps"
    );
    let third = rows
        .iter()
        .find(|r| r.user_id.is_none())
        .expect("anonymous");
    assert_eq!(third.app, "API");
    assert!(
        rows.iter()
            .all(|r| r.kind == RecordKind::Request && r.input_tokens == Some(3))
    );
}

#[tokio::test]
async fn events_are_recorded_as_events() {
    let sink = MemorySink::new();
    let layer = ActivityLayer::new(sink.clone());
    let events = layer.events();
    assert!(events.clone().record(
        "register",
        "auth",
        "Auth",
        &Attribution::user("u_9").app("Auth")
    ));
    layer.writer().flush().await;
    let rows = sink.records();
    assert_eq!(rows.len(), 1);
    let e = &rows[0];
    assert_eq!(e.kind, RecordKind::Event);
    assert_eq!((&*e.endpoint, &*e.app), ("register", "Auth"));
    assert_eq!(
        (e.model.as_deref(), e.provider.as_deref()),
        (Some("auth"), Some("Auth"))
    );
    assert_eq!(e.user_id.as_deref(), Some("u_9"));
    assert_eq!(
        (e.status_code, e.input_tokens, e.cost_usd),
        (None, None, None)
    );
}

#[tokio::test]
async fn the_record_id_header_names_the_written_record() {
    let sink = MemorySink::new();
    let layer = ActivityLayer::builder(sink.clone())
        .record_id_header(http::HeaderName::from_static("x-activity-id"))
        .build();
    let service = layer.layer(service_fn(
        |_req: Request<ActivityRequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                REPLY.as_bytes(),
            ))))
        },
    ));
    let request = chat().body(Full::new(Bytes::from_static(b"{}"))).unwrap();
    let response = service.oneshot(request).await.expect("infallible");
    let header = response.headers()["x-activity-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.into_body().collect().await.expect("body");
    layer.writer().flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(header, records[0].id.to_string());

    // Off by default.
    let plain = ActivityLayer::new(MemorySink::new());
    let service = plain.layer(service_fn(
        |_req: Request<ActivityRequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    ));
    let request = chat().body(Full::new(Bytes::from_static(b"{}"))).unwrap();
    let response = service.oneshot(request).await.expect("infallible");
    assert!(!response.headers().contains_key("x-activity-id"));
}
