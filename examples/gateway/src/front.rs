//! What a request passes before its handler, in as few boxed levels as axum allows: each one
//! costs every request allocations (axum's `Route` clones its boxed service for each call, a
//! clone of a boxed level clones every boxed level inside it, and `from_fn` clones its inner
//! service, boxes it again as `Next` and boxes its own future for each call).
//!
//! - [`EveryRequestLayer`], around the whole router: the path check ([`paths::refusal`]) and
//!   the request body's bounds ([`limits::bound`]). Both decide without waiting, so it is a
//!   plain tower service that calls its inner service directly: no clone, no box.
//! - [`llm`], one middleware on the LLM routes: the key ([`auth::admit`]), the Gemini action
//!   ([`proxy::known_action`]), the session ([`sessions::attribute`]) and the upstream
//!   ([`routing::route`]), in that order, the first refusal answering.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::{AppState, auth, limits, paths, proxy, routing, sessions};

/// Middleware on the LLM routes: every check before the budget and the activity layer (see
/// the module docs); a request refused here is answered by the gateway, never sent upstream,
/// and not recorded.
pub async fn llm(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match checked(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// The LLM route's checks in order: the request to go on with, or the answer.
async fn checked(state: &AppState, mut request: Request) -> Result<Request, Response> {
    auth::admit(state, &mut request).await?;
    proxy::known_action(request.uri().path()).map_err(IntoResponse::into_response)?;
    sessions::attribute(state, &mut request)
        .await
        .map_err(IntoResponse::into_response)?;
    routing::route(state, request).await
}

/// The layer of [`EveryRequest`].
#[derive(Clone)]
pub struct EveryRequestLayer {
    state: AppState,
}

impl EveryRequestLayer {
    /// The layer, with the bounds of `state.limits`.
    pub fn new(state: AppState) -> Self {
        EveryRequestLayer { state }
    }
}

impl<S> Layer<S> for EveryRequestLayer {
    type Service = EveryRequest<S>;

    fn layer(&self, inner: S) -> EveryRequest<S> {
        EveryRequest {
            inner,
            state: self.state.clone(),
        }
    }
}

/// What every request passes before it is routed: `400 invalid_path` for a path not in
/// normal form ([`paths::check`]), else the request with its body bounded in time
/// ([`limits::bound`]) handed to the inner service.
#[derive(Clone)]
pub struct EveryRequest<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for EveryRequest<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(refused) = paths::refusal(request.uri().path()) {
            return Either::Left(ready(Ok(refused)));
        }
        Either::Right(self.inner.call(limits::bound(&self.state.limits, request)))
    }
}
