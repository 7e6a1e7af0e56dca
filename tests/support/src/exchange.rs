//! Runs one recorded exchange through an [`ActivityLayer`]: a fake upstream answers with the
//! recorded body (in frames of a chosen size), a fake client reads it (optionally going away
//! after some bytes).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};
use tower_activity::{ActivityLayer, ActivityRequestBody};

use crate::framed::{Ending, FramedBody};

/// One exchange to replay.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub path: String,
    pub request: Bytes,
    pub status: u16,
    pub content_type: String,
    pub response: Bytes,
    pub chunk: usize,
    pub ending: Ending,
    pub drop_after: Option<usize>,
    pub response_headers: Vec<(String, String)>,
    pub request_headers: Vec<(String, String)>,
}

impl Exchange {
    /// A 200 response of `response` with a content type from the file name's extension.
    pub fn new(path: &str, response: impl Into<Bytes>, sse: bool) -> Self {
        Exchange {
            path: path.to_owned(),
            request: Bytes::from_static(b"{}"),
            status: 200,
            content_type: if sse {
                "text/event-stream".into()
            } else {
                "application/json".into()
            },
            response: response.into(),
            chunk: 0,
            ending: Ending::Plain,
            drop_after: None,
            response_headers: Vec::new(),
            request_headers: Vec::new(),
        }
    }

    pub fn request(mut self, body: impl Into<Bytes>) -> Self {
        self.request = body.into();
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk;
        self
    }

    pub fn ending(mut self, ending: Ending) -> Self {
        self.ending = ending;
        self
    }

    pub fn drop_after(mut self, bytes: usize) -> Self {
        self.drop_after = Some(bytes);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.response_headers.push((name.into(), value.into()));
        self
    }

    /// A header the client sends.
    pub fn request_header(mut self, name: &str, value: &str) -> Self {
        self.request_headers.push((name.into(), value.into()));
        self
    }
}

/// What the two ends saw.
#[derive(Debug)]
pub struct Seen {
    /// The bytes the client received.
    pub received: Bytes,
    /// The request body the upstream received.
    pub upstream_request: Bytes,
    /// The response head the client received.
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    /// The body error the client saw, if any.
    pub error: Option<String>,
}

/// Replays `ex` through `layer`. The record goes to the layer's writer.
pub async fn run(layer: &ActivityLayer, ex: Exchange) -> Seen {
    let frames = crate::framed::split(&ex.response, ex.chunk);
    run_frames(layer, ex, frames).await
}

/// Replays `ex` with its response cut into exactly `frames`.
pub async fn run_frames(layer: &ActivityLayer, ex: Exchange, frames: Vec<Bytes>) -> Seen {
    let upstream_request = Arc::new(Mutex::new(Bytes::new()));
    let seen_request = upstream_request.clone();
    let answer = ex.clone();
    let frames = Arc::new(frames);
    let upstream = service_fn(move |req: Request<ActivityRequestBody<Full<Bytes>>>| {
        let seen_request = seen_request.clone();
        let ex = answer.clone();
        let frames = frames.clone();
        async move {
            let body = req.into_body().collect().await?.to_bytes();
            *seen_request.lock().expect("not poisoned") = body;
            let mut response = Response::builder()
                .status(ex.status)
                .header(header::CONTENT_TYPE, ex.content_type.as_str());
            for (k, v) in &ex.response_headers {
                response = response.header(k.as_str(), v.as_str());
            }
            let body = FramedBody::from_frames(frames.to_vec(), ex.ending.clone());
            Ok::<_, Infallible>(response.body(body).expect("valid response"))
        }
    });
    let service = layer.layer(upstream);
    let mut request = Request::post(ex.path.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, ex.request.len());
    for (k, v) in &ex.request_headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let request = request
        .body(Full::new(ex.request.clone()))
        .expect("valid request");
    let response = service.oneshot(request).await.expect("infallible");
    let (head, mut body) = response.into_parts();
    let mut received = BytesMut::new();
    let mut error = None;
    loop {
        if ex.drop_after.is_some_and(|n| received.len() >= n) {
            break;
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    received.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
            None => break,
        }
    }
    drop(body);
    let upstream_request = upstream_request.lock().expect("not poisoned").clone();
    Seen {
        received: received.freeze(),
        upstream_request,
        status: head.status,
        headers: head.headers,
        error,
    }
}
