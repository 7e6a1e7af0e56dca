//! [`ActivityFuture`]: reads an LLM request body (up to a cap), calls the inner service, and
//! wraps its response body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::ActivityBody;
use crate::buf::{Frames, to_bytes};
use crate::guard::ExchangeGuard;
use crate::record::{LlmApi, ProviderError};
use crate::request::{ActivityRequestBody, Probed, RequestFacts};
use crate::splice::with_include_usage_known;

pin_project! {
    /// The response future of an [`ActivityService`](crate::ActivityService).
    ///
    /// If it is dropped before the response head arrives (the client went away), the exchange
    /// is recorded as `cancelled`.
    pub struct ActivityFuture<S, B>
    where
        S: Service<Request<ActivityRequestBody<B>>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
        // Moves into the body with the response head.
        guard: Option<ExchangeGuard>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<ActivityRequestBody<B>>>,
        B: Body,
    {
        Reading {
            service: Option<S>,
            parts: Option<Parts>,
            body: Option<Pin<Box<B>>>,
            frames: Frames,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, B> ActivityFuture<S, B>
where
    S: Service<Request<ActivityRequestBody<B>>>,
    B: Body,
{
    /// Reads the request body (up to the cap) before calling `service`.
    pub(crate) fn reading(service: S, parts: Parts, body: B, guard: ExchangeGuard) -> Self {
        ActivityFuture {
            state: State::Reading {
                service: Some(service),
                parts: Some(parts),
                body: Some(Box::pin(body)),
                frames: Frames::default(),
            },
            guard: Some(guard),
        }
    }

    /// Waits for a service already called.
    pub(crate) fn calling(future: S::Future, guard: ExchangeGuard) -> Self {
        ActivityFuture {
            state: State::Calling { future },
            guard: Some(guard),
        }
    }
}

impl<S, B, ResB> Future for ActivityFuture<S, B>
where
    S: Service<Request<ActivityRequestBody<B>>, Response = Response<ResB>>,
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
            let Some(guard) = this.guard.as_mut() else {
                unreachable!("the future completes once")
            };
            match this.state.as_mut().project() {
                StateProj::Reading {
                    service,
                    parts,
                    body,
                    frames,
                } => {
                    let Some(reading) = body.as_mut() else {
                        unreachable!("a reading future always holds its body")
                    };
                    let request_body = match ready!(reading.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => {
                                frames.push(to_bytes(data));
                                if frames.len() <= guard.settings().max_request_body {
                                    continue;
                                }
                                mark(guard, "over_cap");
                                ActivityRequestBody::read(frames.take(), body.take(), None)
                            }
                            Err(frame) => match frame.into_trailers() {
                                Ok(t) => finish_reading(guard, parts, frames, Some(t), body),
                                Err(_) => continue,
                            },
                        },
                        Some(Err(error)) => {
                            mark(guard, "error");
                            ActivityRequestBody::failed(frames.take(), error)
                        }
                        None => finish_reading(guard, parts, frames, None, body),
                    };
                    let (Some(mut service), Some(parts)) = (service.take(), parts.take()) else {
                        unreachable!("a reading future calls its service once")
                    };
                    let future = service.call(Request::from_parts(parts, request_body));
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let Some(mut guard) = this.guard.take() else {
                        unreachable!("the future completes once")
                    };
                    return Poll::Ready(match result {
                        Ok(response) => {
                            let (mut head, body) = response.into_parts();
                            let id_header = guard.settings().record_id_header.clone();
                            if let Some(pending) = guard.pending_mut() {
                                pending.absorb_response(&head.extensions);
                                if let Some(name) = id_header {
                                    let mut id = uuid::Uuid::encode_buffer();
                                    let id =
                                        pending.record.id.as_hyphenated().encode_lower(&mut id);
                                    if let Ok(value) = HeaderValue::from_str(id) {
                                        head.headers.insert(name, value);
                                    }
                                }
                            }
                            let rewrites = guard.respond(head.status, &head.headers);
                            if rewrites {
                                head.headers.remove(header::CONTENT_LENGTH);
                            }
                            Ok(Response::from_parts(
                                head,
                                ActivityBody::new(body, guard, rewrites),
                            ))
                        }
                        Err(error) => {
                            guard.fail(ProviderError::new(
                                Some("service_error".into()),
                                "the inner service returned an error instead of a response",
                            ));
                            Err(error)
                        }
                    });
                }
            }
        }
    }
}

fn mark(guard: &mut ExchangeGuard, what: &'static str) {
    if let Some(p) = guard.pending_mut() {
        p.record.metadata.insert("request_body".into(), what.into());
    }
}

/// The whole request body is read: learn from it, and ask OpenAI chat streams for usage.
fn finish_reading<B: Body>(
    guard: &mut ExchangeGuard,
    parts: &mut Option<Parts>,
    frames: &mut Frames,
    trailers: Option<HeaderMap>,
    body: &mut Option<Pin<Box<B>>>,
) -> ActivityRequestBody<B> {
    body.take();
    let mut bytes = frames.take();
    // The budget layer outside hands on what it probed of these very bytes.
    let facts = parts
        .as_mut()
        .and_then(|p| Probed::take(p, &bytes))
        .unwrap_or_else(|| RequestFacts::probe(bytes.clone()));
    let include_usage = guard.settings().include_usage;
    if let (Some(p), Some(parts)) = (guard.pending_mut(), parts.as_mut()) {
        if p.record.api == LlmApi::OpenAiChat
            && include_usage
            && facts.stream
            && !facts.include_usage
        {
            if let Some(rewritten) = with_include_usage_known(&bytes, facts.without_options) {
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
    ActivityRequestBody::read(bytes, None, trailers)
}
