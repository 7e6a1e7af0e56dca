//! Byte helpers the request and response sides share.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame};

/// Zero-copy for `Bytes` (its `copy_to_bytes` is a cheap split), one copy for other buffers.
pub(crate) fn to_bytes<D: Buf>(mut data: D) -> Bytes {
    let n = data.remaining();
    data.copy_to_bytes(n)
}

/// One buffer from the kept frames (no copy when there is one frame).
pub(crate) fn concat(frames: Vec<Bytes>) -> Bytes {
    match frames.len() {
        0 => Bytes::new(),
        1 => frames.into_iter().next().unwrap_or_default(),
        _ => {
            let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
            for f in frames {
                out.extend_from_slice(&f);
            }
            out.freeze()
        }
    }
}

/// Polls `body` for a frame with its data as [`Bytes`] (zero-copy for `Bytes` bodies): the
/// pass-through of every body wrapper.
pub(crate) fn poll_bytes<B>(
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, B::Error>>>
where
    B: Body + ?Sized,
    B::Data: Buf,
{
    body.poll_frame(cx)
        .map(|f| f.map(|r| r.map(|f| f.map_data(to_bytes))))
}
