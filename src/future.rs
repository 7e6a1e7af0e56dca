//! [`ActivityFuture`]: reads an LLM request body (up to a cap), calls the inner service, and
//! wraps its response body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::account::{Accounting, Pending, concat};
use crate::body::ActivityBody;
use crate::layer::Shared;
use crate::record::{ActivityError, Api};
use crate::request::{RequestBody, RequestFacts, to_bytes, with_include_usage};

pin_project! {
    /// The response future of an [`ActivityService`](crate::ActivityService).
    ///
    /// If it is dropped before the response head arrives (the client went away), the exchange
    /// is recorded as `cancelled`.
    pub struct ActivityFuture<S, B>
    where
        S: Service<Request<RequestBody<B>>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
        pending: PendingGuard,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<RequestBody<B>>>,
        B: Body,
    {
        Reading {
            service: Option<S>,
            parts: Option<Parts>,
            body: Option<Pin<Box<B>>>,
            frames: Vec<Bytes>,
            len: usize,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

/// Records a `cancelled` exchange if the future is dropped before the response head.
struct PendingGuard {
    pending: Option<Pending>,
    shared: Arc<Shared>,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.end_without_response(&self.shared, None);
        }
    }
}

impl<S, B> ActivityFuture<S, B>
where
    S: Service<Request<RequestBody<B>>>,
    B: Body,
{
    pub(crate) fn reading(
        service: S,
        parts: Parts,
        body: B,
        pending: Pending,
        shared: Arc<Shared>,
    ) -> Self {
        ActivityFuture {
            state: State::Reading {
                service: Some(service),
                parts: Some(parts),
                body: Some(Box::pin(body)),
                frames: Vec::new(),
                len: 0,
            },
            pending: PendingGuard {
                pending: Some(pending),
                shared,
            },
        }
    }

    pub(crate) fn calling(future: S::Future, pending: Pending, shared: Arc<Shared>) -> Self {
        ActivityFuture {
            state: State::Calling { future },
            pending: PendingGuard {
                pending: Some(pending),
                shared,
            },
        }
    }
}

impl<S, B, ResB> Future for ActivityFuture<S, B>
where
    S: Service<Request<RequestBody<B>>, Response = Response<ResB>>,
    B: Body,
    B::Data: Buf,
    ResB: Body,
    ResB::Data: Buf,
    ResB::Error: std::fmt::Display,
{
    type Output = Result<Response<ActivityBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Reading {
                    service,
                    parts,
                    body,
                    frames,
                    len,
                } => {
                    let shared = &this.pending.shared;
                    let Some(reading) = body.as_mut() else {
                        unreachable!("a reading future always holds its body")
                    };
                    let request_body = match ready!(reading.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => {
                                let data = to_bytes(data);
                                *len += data.len();
                                frames.push(data);
                                if *len <= shared.max_request_body {
                                    continue;
                                }
                                mark(this.pending, "over_cap");
                                RequestBody::read(concat(std::mem::take(frames)), body.take(), None)
                            }
                            Err(frame) => match frame.into_trailers() {
                                Ok(t) => finish_reading(this.pending, parts, frames, Some(t), body),
                                Err(_) => continue,
                            },
                        },
                        Some(Err(error)) => {
                            mark(this.pending, "error");
                            RequestBody::failed(concat(std::mem::take(frames)), error)
                        }
                        None => finish_reading(this.pending, parts, frames, None, body),
                    };
                    let (Some(mut service), Some(parts)) = (service.take(), parts.take()) else {
                        unreachable!("a reading future calls its service once")
                    };
                    let future = service.call(Request::from_parts(parts, request_body));
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let Some(mut pending) = this.pending.pending.take() else {
                        unreachable!("the future completes once")
                    };
                    let shared = this.pending.shared.clone();
                    return Poll::Ready(match result {
                        Ok(response) => {
                            let (mut head, body) = response.into_parts();
                            pending.absorb_response(&head.extensions);
                            if let Some(name) = &shared.record_id_header {
                                let mut id = uuid::Uuid::encode_buffer();
                                let id = pending.record.id.as_hyphenated().encode_lower(&mut id);
                                if let Ok(value) = HeaderValue::from_str(id) {
                                    head.headers.insert(name.clone(), value);
                                }
                            }
                            let accounting =
                                Accounting::new(shared, pending, head.status, &head.headers);
                            if accounting.rewrites() {
                                head.headers.remove(header::CONTENT_LENGTH);
                            }
                            Ok(Response::from_parts(
                                head,
                                ActivityBody::new(body, accounting),
                            ))
                        }
                        Err(error) => {
                            pending.end_without_response(
                                &shared,
                                Some(ActivityError::new(
                                    Some("service_error".into()),
                                    "the inner service returned an error instead of a response",
                                )),
                            );
                            Err(error)
                        }
                    });
                }
            }
        }
    }
}

fn mark(pending: &mut PendingGuard, what: &'static str) {
    if let Some(p) = pending.pending.as_mut() {
        p.record.metadata.insert("request_body".into(), what.into());
    }
}

/// The whole request body is read: learn from it, and ask OpenAI chat streams for usage.
fn finish_reading<B: Body>(
    pending: &mut PendingGuard,
    parts: &mut Option<Parts>,
    frames: &mut Vec<Bytes>,
    trailers: Option<HeaderMap>,
    body: &mut Option<Pin<Box<B>>>,
) -> RequestBody<B> {
    body.take();
    let mut bytes = concat(std::mem::take(frames));
    let facts = RequestFacts::probe(bytes.clone());
    if let (Some(p), Some(parts)) = (pending.pending.as_mut(), parts.as_mut()) {
        if p.record.api == Api::OpenAiChat
            && pending.shared.include_usage
            && facts.stream
            && !facts.include_usage
        {
            if let Some(rewritten) = with_include_usage(&bytes) {
                bytes = rewritten;
                p.injected = true;
                if parts.headers.contains_key(header::CONTENT_LENGTH) {
                    parts
                        .headers
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                }
            }
        }
        p.facts = facts;
    }
    RequestBody::read(bytes, None, trailers)
}
