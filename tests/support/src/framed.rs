//! A response body that yields given bytes in frames of a chosen size, optionally ending in
//! trailers or an error, and optionally reporting `is_end_stream()` as soon as its last data
//! frame is out (as hyper's Content-Length bodies do). Shared by the tests, the `replay`
//! example and the benches.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// How a [`FramedBody`] ends after its data.
#[derive(Debug, Clone)]
pub enum Ending {
    /// `Ready(None)` after the last frame.
    Plain,
    /// `is_end_stream()` turns true with the last data frame (hyper stops polling then).
    EndStream,
    /// A trailers frame.
    Trailers,
    /// An error instead of the end.
    Error(String),
}

/// See the module docs.
#[derive(Debug)]
pub struct FramedBody {
    frames: VecDeque<Bytes>,
    ending: Option<Ending>,
    exact: bool,
}

impl FramedBody {
    /// `bytes` in frames of `chunk` bytes (0 = one frame).
    pub fn new(bytes: impl Into<Bytes>, chunk: usize, ending: Ending) -> Self {
        let bytes = bytes.into();
        let frames = split(&bytes, chunk);
        FramedBody::from_frames(frames, ending)
    }

    /// Exactly these frames.
    pub fn from_frames(frames: Vec<Bytes>, ending: Ending) -> Self {
        let exact = matches!(ending, Ending::EndStream);
        FramedBody {
            frames: frames.into(),
            ending: Some(ending),
            exact,
        }
    }
}

/// `bytes` cut into pieces of `chunk` bytes (0 = one piece).
pub fn split(bytes: &Bytes, chunk: usize) -> Vec<Bytes> {
    if chunk == 0 || bytes.is_empty() {
        return vec![bytes.clone()];
    }
    (0..bytes.len())
        .step_by(chunk)
        .map(|i| bytes.slice(i..(i + chunk).min(bytes.len())))
        .collect()
}

impl Body for FramedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(f) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(f))));
        }
        Poll::Ready(match self.ending.take() {
            Some(Ending::Trailers) => {
                let mut t = HeaderMap::new();
                t.insert("x-done", "1".parse().expect("valid header"));
                Some(Ok(Frame::trailers(t)))
            }
            Some(Ending::Error(e)) => Some(Err(std::io::Error::other(e))),
            _ => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && (self.exact || self.ending.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let n: u64 = self.frames.iter().map(|f| f.len() as u64).sum();
        if self.exact {
            SizeHint::with_exact(n)
        } else {
            let mut h = SizeHint::new();
            h.set_lower(n);
            h
        }
    }
}
