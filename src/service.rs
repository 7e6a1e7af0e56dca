//! [`ActivityService`]: reads the request side and starts an [`ActivityFuture`].

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Buf;
use http::{HeaderName, Method, Request, Response, header};
use http_body::Body;
use tower_service::Service;

use crate::account::Exchange;
use crate::attribution::{Attribution, Upstream};
use crate::body::ActivityBody;
use crate::future::ActivityFuture;
use crate::guard::ExchangeGuard;
use crate::protocol::model_from_path;
use crate::record::{ActivityRecord, LlmApi, RecordKind};
use crate::request::ActivityRequestBody;
use crate::settings::Settings;
use crate::settlement::Settlement;
use crate::traceparent::{self, TraceParent};

/// Looked up by a name made once: a `&str` name is parsed and hashed anew on every lookup.
const TRACEPARENT: HeaderName = HeaderName::from_static(traceparent::HEADER);

/// The usual paths of the wire formats, which a record's `endpoint` borrows instead of
/// copying (an allocation per record, and its free when the writer is done with it).
const USUAL_PATHS: [&str; 9] = [
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1/embeddings",
    "/v1/completions",
    "/chat/completions",
    "/responses",
    "/messages",
    "/embeddings",
];

/// The record's `endpoint` for `path`: one of [`USUAL_PATHS`] borrowed, else a copy.
fn endpoint(path: &str) -> Cow<'static, str> {
    match USUAL_PATHS.iter().find(|p| **p == path) {
        Some(usual) => Cow::Borrowed(usual),
        None => Cow::Owned(path.to_owned()),
    }
}

/// The service [`ActivityLayer`](crate::ActivityLayer) wraps around `S`.
///
/// It needs `S: Clone` because an LLM request body is read (up to a cap) before `S` is called:
/// the clone that was driven to readiness is the one that gets the request.
#[derive(Clone)]
pub struct ActivityService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ActivityService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> ActivityService<S> {
    pub(crate) fn new(inner: S, settings: Arc<Settings>) -> Self {
        ActivityService { inner, settings }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consumes the wrapper, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResB> Service<Request<B>> for ActivityService<S>
where
    S: Service<Request<ActivityRequestBody<B>>, Response = Response<ResB>> + Clone,
    B: Body,
    B::Data: Buf,
    ResB: Body,
    ResB::Data: Buf,
    ResB::Error: std::fmt::Display,
{
    type Response = Response<ActivityBody<ResB>>;
    type Error = S::Error;
    type Future = ActivityFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path();
        let api = self.settings.api_for(path);

        // Boxed at once and filled in place: the exchange is large, and moving it into the
        // guard's box afterwards would copy it.
        let mut exchange = Box::new(Exchange::new(
            Box::new(ActivityRecord::new(RecordKind::Request)),
            start,
        ));
        let record = &mut *exchange.record;
        record.endpoint = endpoint(path);
        record.api = api;
        record.model = model_from_path(api, path);
        match parts.extensions.get::<Attribution>() {
            Some(who) => who.apply(record),
            None => {
                if let Some(who) = self.settings.attribution.as_ref().and_then(|h| h(&parts)) {
                    who.apply(record);
                }
            }
        }
        record.upstream = parts.extensions.get::<Upstream>().map(|u| u.0.clone());
        // The caller's trace context, so that a trace exporter can put the request's span in
        // the caller's trace. Only a well-formed value is kept (it is the caller's bytes).
        if let Some(tp) = parts
            .headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .filter(|v| TraceParent::parse(v).is_some())
        {
            record
                .metadata
                .insert(traceparent::METADATA_KEY.into(), tp.into());
        }

        let length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let over_cap = length.is_some_and(|n| n > self.settings.max_request_body as u64);
        if over_cap {
            exchange
                .record
                .metadata
                .insert("request_body".into(), "over_cap".into());
        }
        let read = api != LlmApi::Unknown
            && parts.method == Method::POST
            && !over_cap
            && !body.is_end_stream();
        let settlement = parts.extensions.remove::<Settlement>();
        let guard = ExchangeGuard::new(self.settings.clone(), exchange, settlement);
        if read {
            // The clone takes the ready service's place; the ready one serves this request.
            let clone = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, clone);
            ActivityFuture::reading(inner, parts, body, guard)
        } else {
            let future = self.inner.call(Request::from_parts(
                parts,
                ActivityRequestBody::passthrough(body),
            ));
            ActivityFuture::calling(future, guard)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_records_endpoint_is_the_path_borrowed_when_usual() {
        for path in USUAL_PATHS {
            assert!(matches!(endpoint(path), Cow::Borrowed(p) if p == path));
        }
        for path in [
            "/v1/chat/completions/",
            "/proxy/v1/messages",
            "",
            "/v1beta/models/g:generateContent",
        ] {
            assert!(
                matches!(endpoint(path), Cow::Owned(p) if p == path),
                "{path}"
            );
        }
    }
}
