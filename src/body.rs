//! [`ActivityBody`]: the response body, passed through while the layer reads it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::buf::to_bytes;
use crate::guard::{End, ExchangeGuard};

pin_project! {
    /// The response body of an [`ActivityService`](crate::ActivityService).
    ///
    /// Frames pass through unchanged (a `Bytes` frame is not copied); the layer only looks at
    /// them. The record is written exactly once: at the end of the stream (`None`, a trailers
    /// frame, or `is_end_stream()` right after a data frame — hyper stops polling a body whose
    /// `Content-Length` is satisfied), on a body error, or, if the body is dropped before its
    /// end, from the drop guard as `cancelled`.
    pub struct ActivityBody<B> {
        #[pin]
        inner: B,
        guard: ExchangeGuard,
        stripping: bool,
        // Bytes a stripped stream still holds at its end, sent before the end.
        tail: Option<Bytes>,
        // A trailers frame that waits for `tail`.
        stash: Option<Frame<Bytes>>,
        ended: bool,
    }
}

impl<B: Body> ActivityBody<B> {
    /// Wraps `inner`; `guard` has seen the response head, and `stripping` says whether the
    /// layer rewrites this body's bytes.
    pub(crate) fn new(inner: B, mut guard: ExchangeGuard, stripping: bool) -> Self {
        // hyper never polls a body that is already at its end: record it now.
        let ended = inner.is_end_stream();
        if ended {
            guard.end(End::Complete);
        }
        ActivityBody {
            inner,
            guard,
            stripping,
            tail: None,
            stash: None,
            ended,
        }
    }
}

impl<B> Body for ActivityBody<B>
where
    B: Body,
    B::Data: Buf,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if let Some(tail) = this.tail.take() {
            return Poll::Ready(Some(Ok(Frame::data(tail))));
        }
        if let Some(frame) = this.stash.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if *this.ended {
            return Poll::Ready(None);
        }
        loop {
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                None => {
                    *this.ended = true;
                    let tail = this.guard.end(End::Complete);
                    return Poll::Ready(tail.map(|t| Ok(Frame::data(t))));
                }
                Some(Err(error)) => {
                    this.guard.end(End::Failed(error.to_string()));
                    return Poll::Ready(Some(Err(error)));
                }
                Some(Ok(frame)) => {
                    let frame = match frame.into_data() {
                        Ok(data) => {
                            let data = to_bytes(data);
                            let mut out = match this.guard.on_data(&data) {
                                Some(stripped) => stripped,
                                None => data,
                            };
                            if this.inner.is_end_stream() {
                                *this.ended = true;
                                if let Some(tail) = this.guard.end(End::Complete) {
                                    if out.is_empty() {
                                        out = tail;
                                    } else {
                                        *this.tail = Some(tail);
                                    }
                                }
                            } else if out.is_empty() && *this.stripping {
                                continue;
                            }
                            Frame::data(out)
                        }
                        Err(frame) => {
                            let frame = frame.map_data(to_bytes);
                            if frame.is_trailers() {
                                *this.ended = true;
                                if let Some(tail) = this.guard.end(End::Complete) {
                                    *this.stash = Some(frame);
                                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                                }
                            }
                            frame
                        }
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.tail.is_some() || self.stash.is_some() {
            return false;
        }
        // While the record is unwritten the body is never "at its end": hyper would stop
        // polling and the drop guard would call a finished exchange cancelled.
        self.ended || (!self.guard.is_active() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.stripping {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

impl<B> std::fmt::Debug for ActivityBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityBody")
            .field("stripping", &self.stripping)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
