//! [`BudgetService`]: reads the request, asks the store, and either calls the inner service
//! with a [`Settlement`] in the extensions or answers the refusal itself.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use serde_json::json;
use tower_service::Service;
use uuid::Uuid;

use crate::buf::{Frames, to_bytes};
use crate::protocol::model_from_path;
use crate::record::LlmApi;
use crate::request::{ActivityRequestBody, Probed, RequestFacts};
use crate::settlement::Settlement;

use super::body::BudgetBody;
use super::estimate::{Read, estimate};
use super::events;
use super::layer::Shared;
use super::refusal::{RateHeaders, Refusal, rate_header_list, rate_headers};
use super::settle::BudgetSettle;
use super::store::{Admission, Verdict};

/// The service [`BudgetLayer`](super::BudgetLayer) wraps around `S`.
///
/// Like [`ActivityService`](crate::ActivityService) it reads an LLM request's body (up to a
/// cap) before calling `S`, so it needs `S: Clone`; the inner service receives the same
/// bytes as an [`ActivityRequestBody`].
#[derive(Clone)]
pub struct BudgetService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for BudgetService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> BudgetService<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        BudgetService { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The response future of a [`BudgetService`] (boxed: admission awaits the store).
pub struct BudgetFuture<R, E> {
    inner: Pin<Box<dyn Future<Output = Result<R, E>> + Send>>,
}

impl<R, E> Future for BudgetFuture<R, E> {
    type Output = Result<R, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<R, E> std::fmt::Debug for BudgetFuture<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetFuture").finish_non_exhaustive()
    }
}

impl<S, B, ResB> Service<Request<B>> for BudgetService<S>
where
    S: Service<Request<ActivityRequestBody<B>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Body + Send + 'static,
    B::Data: Buf + Send,
    B::Error: Send,
    ResB: Body + Send + 'static,
{
    type Response = Response<BudgetBody<ResB>>;
    type Error = S::Error;
    type Future = BudgetFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone takes the ready service's place; the ready one serves this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        BudgetFuture {
            inner: Box::pin(admit(inner, self.shared.clone(), req)),
        }
    }
}

async fn admit<S, B, ResB>(
    inner: S,
    shared: Arc<Shared>,
    req: Request<B>,
) -> Result<Response<BudgetBody<ResB>>, S::Error>
where
    S: Service<Request<ActivityRequestBody<B>>, Response = Response<ResB>>,
    B: Body,
    B::Data: Buf,
{
    let now = (shared.clock)();
    let (mut parts, body) = req.into_parts();
    // Borrowed, not copied: only the extensions change before the request goes on.
    let path = parts.uri.path();
    let api = shared.api_for(path);
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (body, read) = match length {
        _ if api == LlmApi::Unknown || parts.method != Method::POST || body.is_end_stream() => {
            (ActivityRequestBody::passthrough(body), Read::Nothing)
        }
        Some(n) if n > shared.max_request_body as u64 => {
            (ActivityRequestBody::passthrough(body), Read::Part(n))
        }
        _ => read_body(body, shared.max_request_body).await,
    };
    let facts = read.probe();
    // The model is borrowed from the facts until the checks are made (the facts go into the
    // extensions only when the request goes on).
    let estimate = estimate(
        api,
        &read,
        facts.as_ref(),
        model_from_path(api, path),
        &shared.prices.current(),
        shared.default_output_tokens,
    );
    let who = shared.who(&parts);
    let checks = shared.checks(
        &parts,
        who.as_ref(),
        estimate.model.as_deref(),
        &estimate.usage,
        now,
    );
    if checks.is_empty() {
        shared
            .tracker
            .unchecked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return call(inner, parts, body, facts, RateHeaders::default()).await;
    }
    let admission = Admission {
        id: Uuid::now_v7(),
        checks,
    };
    match shared.store.admit(&admission).await {
        Ok(Verdict::Admitted(states)) => {
            shared
                .tracker
                .admitted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let headers = rate_header_list(&states, now);
            parts.extensions.insert(Settlement::new(BudgetSettle {
                shared: shared.clone(),
                admission,
                who,
                runtime: tokio::runtime::Handle::current(),
            }));
            call(inner, parts, body, facts, headers).await
        }
        Ok(Verdict::Refused(states)) => {
            shared
                .tracker
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let headers = rate_headers(&states, now);
            let response = match Refusal::find(&admission.checks, &states) {
                Some(refusal) => {
                    if let Some(events) = &shared.events {
                        events.record_raw(events::refused(
                            who.as_ref(),
                            &refusal,
                            path,
                            estimate.model.as_deref(),
                        ));
                    }
                    refusal.response(api, now, headers)
                }
                // A store that refuses without a cap in the way breaks the trait's contract;
                // say so rather than invent a limit.
                None => unavailable("the budget store refused the request without naming a limit"),
            };
            Ok(response.map(BudgetBody::refusal))
        }
        Err(e) => {
            shared
                .tracker
                .store_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!("budget store unavailable, request sent on unchecked: {e}");
            if shared.fail_closed {
                return Ok(unavailable("the budget store is unavailable").map(BudgetBody::refusal));
            }
            call(inner, parts, body, facts, RateHeaders::default()).await
        }
    }
}

/// Calls the inner service with the request's probed `facts` in its extensions (the activity
/// layer inside reads the same bytes: it takes them instead of probing again), and adds the
/// `x-ratelimit-*` headers to its answer (each replacing any the inner service set under its
/// name).
async fn call<S, B, ResB>(
    mut inner: S,
    mut parts: Parts,
    body: ActivityRequestBody<B>,
    facts: Option<RequestFacts>,
    headers: RateHeaders,
) -> Result<Response<BudgetBody<ResB>>, S::Error>
where
    S: Service<Request<ActivityRequestBody<B>>, Response = Response<ResB>>,
    B: Body,
{
    if let Some(facts) = facts {
        parts.extensions.insert(Probed(facts));
    }
    let mut response = inner.call(Request::from_parts(parts, body)).await?;
    let map = response.headers_mut();
    for (name, value) in headers.into_iter().flatten() {
        map.insert(name, value);
    }
    Ok(response.map(BudgetBody::inner))
}

/// `503` in the OpenAI error shape.
fn unavailable(message: &str) -> Response<Bytes> {
    let body = json!({"error": {"message": message, "type": "budget_unavailable", "param": null, "code": null}});
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Reads the body up to `cap` bytes: the bytes to estimate from, and the body to send on
/// (the bytes read, then whatever is left).
async fn read_body<B>(body: B, cap: usize) -> (ActivityRequestBody<B>, Read)
where
    B: Body,
    B::Data: Buf,
{
    let mut body = Box::pin(body);
    // The first frame inline: a body of one frame (nearly every request) needs no vector.
    let mut frames = Frames::default();
    loop {
        match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    frames.push(to_bytes(data));
                    if frames.len() > cap {
                        let read = Read::Part(frames.len() as u64);
                        return (
                            ActivityRequestBody::read(frames.take(), Some(body), None),
                            read,
                        );
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let bytes: Bytes = frames.take();
                        let read = Read::Whole(bytes.clone());
                        return (ActivityRequestBody::read(bytes, None, Some(trailers)), read);
                    }
                }
            },
            Some(Err(error)) => {
                let read = Read::Part(frames.len() as u64);
                return (ActivityRequestBody::failed(frames.take(), error), read);
            }
            None => {
                let bytes = frames.take();
                let read = Read::Whole(bytes.clone());
                return (ActivityRequestBody::read(bytes, None, None), read);
            }
        }
    }
}
