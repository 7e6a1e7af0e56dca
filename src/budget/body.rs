//! [`BudgetBody`]: the inner service's response body, or a refusal's JSON.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::buf::poll_bytes;

pin_project! {
    /// The response body of a [`BudgetService`](super::BudgetService): the inner service's
    /// body passed through (a `Bytes` frame is not copied), or the JSON of a refusal.
    pub struct BudgetBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Refusal { bytes: Option<Bytes> },
    }
}

impl<B> BudgetBody<B> {
    pub(super) fn inner(body: B) -> Self {
        BudgetBody {
            kind: Kind::Inner { body },
        }
    }

    pub(super) fn refusal(bytes: Bytes) -> Self {
        BudgetBody {
            kind: Kind::Refusal { bytes: Some(bytes) },
        }
    }
}

impl<B> Body for BudgetBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => poll_bytes(body, cx),
            KindProj::Refusal { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Refusal { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Refusal { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl<B> std::fmt::Debug for BudgetBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            Kind::Inner { .. } => "BudgetBody::Inner",
            Kind::Refusal { .. } => "BudgetBody::Refusal",
        })
    }
}
