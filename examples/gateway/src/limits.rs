//! [`Limits`]: the bounds that keep a client (slow, hostile or just broken) and an upstream
//! (hung, silent) from holding the gateway's memory, connections or requests forever; and
//! [`bound`], which times a request's body.
//!
//! | bound | default | variable |
//! |---|---|---|
//! | open connections | 1024 (more wait in the listen backlog) | `GATEWAY_MAX_CONNECTIONS` |
//! | request headers | 30 s (hyper; the timer also closes a keep-alive connection idle that long) | `REQUEST_HEADER_TIMEOUT_SECS` |
//! | request body, between two reads | 10 s | `REQUEST_BODY_IDLE_SECS` |
//! | request body, whole | 30 s from its headers (so headers and body take at most 60 s) | `REQUEST_BODY_TIMEOUT_SECS` |
//! | body read to route by model | 32 MiB | — |
//! | body of `/auth/*` and `/v1/chat/sessions` | 16 KiB ([`SMALL_BODY`]) | — |
//! | registrations per client address | 10 a minute | `REGISTER_PER_MINUTE` |
//! | upstream connect | 10 s | `UPSTREAM_CONNECT_TIMEOUT_SECS` |
//! | upstream response headers | 300 s (a long non-streamed reasoning request) | `UPSTREAM_HEADER_TIMEOUT_SECS` |
//! | upstream stream silent | 300 s between two frames | `UPSTREAM_IDLE_TIMEOUT_SECS` |
//!
//! A body too slow is answered `408` (in the API's error shape on LLM routes) and its
//! connection closed. When routing reads the body, nothing was sent upstream and nothing is
//! recorded; when the body was already streaming to the upstream, the request had reached the
//! activity layer and is recorded as an `error` with status 408.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::LengthLimitError;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_activity::LlmApi;

use crate::error::api_error;

/// The largest body the gateway's own JSON routes take (registration, chat sessions): they
/// need a few hundred bytes, and an unauthenticated route must not buffer megabytes.
pub const SMALL_BODY: usize = 16 * 1024;

/// Every bound the gateway enforces (see the module docs for the defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The time a request's headers may take.
    pub header_timeout: Duration,
    /// The longest a request body may pause between two reads.
    pub body_idle: Duration,
    /// The time a request body may take in all, from its headers.
    pub body_timeout: Duration,
    /// The most of a body read to find its `model` when routing depends on it.
    pub max_routed_body: usize,
    /// Registrations a client address may make per minute (burst included).
    pub register_per_minute: u32,
    /// The time to connect to an upstream.
    pub upstream_connect: Duration,
    /// The time an upstream may take to send its response headers.
    pub upstream_headers: Duration,
    /// The longest an upstream's response body may stay silent; then the stream ends as
    /// `interrupted`.
    pub upstream_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            body_idle: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_routed_body: 32 * 1024 * 1024,
            register_per_minute: 10,
            upstream_connect: Duration::from_secs(10),
            upstream_headers: Duration::from_secs(300),
            upstream_idle: Duration::from_secs(300),
        }
    }
}

/// A body that took too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyTimeout {
    /// No data for the idle limit.
    #[error("no data for {0:?}")]
    Idle(Duration),
    /// Not finished within the whole-body limit.
    #[error("not finished within {0:?}")]
    Deadline(Duration),
}

pin_project! {
    /// `inner` with an idle limit between frames and, optionally, a deadline for all of it.
    /// (tower-http's `TimeoutBody` has the idle limit only.)
    pub struct TimedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        idle: Sleep,
        idle_after: Duration,
        #[pin]
        deadline: Option<Sleep>,
        deadline_after: Duration,
    }
}

impl<B> TimedBody<B> {
    /// `inner`, failing with [`BodyTimeout::Idle`] after `idle` without a frame and (when
    /// given) [`BodyTimeout::Deadline`] `deadline` from now.
    pub fn new(inner: B, idle: Duration, deadline: Option<Duration>) -> Self {
        TimedBody {
            inner,
            idle: tokio::time::sleep(idle),
            idle_after: idle,
            deadline: deadline.map(tokio::time::sleep),
            deadline_after: deadline.unwrap_or_default(),
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            this.idle.as_mut().reset(Instant::now() + *this.idle_after);
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let late = this
            .deadline
            .as_pin_mut()
            .is_some_and(|d| d.poll(cx).is_ready());
        if late {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout::Deadline(
                *this.deadline_after,
            )))));
        }
        if this.idle.poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout::Idle(*this.idle_after)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `request` with its body given the idle and whole-body limits (a request without a body
/// as it is). Every request passes it before routing
/// ([`EveryRequest`](crate::front::EveryRequest)).
pub fn bound(limits: &Limits, request: Request) -> Request {
    if request.body().is_end_stream() {
        return request;
    }
    let (parts, body) = request.into_parts();
    let body = Body::new(TimedBody::new(
        body,
        limits.body_idle,
        Some(limits.body_timeout),
    ));
    Request::from_parts(parts, body)
}

/// The first error of type `T` in `e`'s chain of sources.
pub fn find_cause<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        next = e.source();
    }
    None
}

/// The answer to a request body that could not be read: `408` when too slow, `413` when
/// over `limit`, `400` otherwise; in `api`'s error shape. The connection is closed after it.
pub fn body_error(api: LlmApi, e: &(dyn StdError + 'static), limit: usize) -> Response {
    let mut response = if let Some(t) = find_cause::<BodyTimeout>(e) {
        api_error(
            api,
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body was too slow ({t}); send it at once"),
        )
    } else if find_cause::<LengthLimitError>(e).is_some() {
        api_error(
            api,
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    } else {
        api_error(
            api,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the request body could not be read: {e}"),
        )
    };
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// How a body sent by `send` (frames into the channel) fails under the test's limits.
    async fn failure(
        send: impl FnOnce(tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>),
    ) -> Option<BodyTimeout> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        send(tx);
        let body = http_body_util::StreamBody::new(tokio_stream_of(rx));
        let err = TimedBody::new(body, Duration::from_secs(1), Some(Duration::from_secs(5)))
            .collect()
            .await
            .unwrap_err();
        find_cause::<BodyTimeout>(&*err).copied()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_times_out_and_a_steady_one_meets_its_deadline() {
        // Silent: never a frame (the sender is kept alive by a task that waits forever).
        let silent = failure(|tx| {
            tokio::spawn(async move {
                std::future::pending::<()>().await;
                drop(tx);
            });
        });
        assert_eq!(
            silent.await,
            Some(BodyTimeout::Idle(Duration::from_secs(1)))
        );
        // A byte every 0.5 s never idles, but the deadline ends it.
        let steady = failure(|tx| {
            tokio::spawn(async move {
                while tx
                    .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .is_ok()
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
        });
        assert_eq!(
            steady.await,
            Some(BodyTimeout::Deadline(Duration::from_secs(5)))
        );
    }

    fn tokio_stream_of<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
