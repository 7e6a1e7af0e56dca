//! Byte helpers the request and response sides share.

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::LocalKey;

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame};

/// Zero-copy for `Bytes` (its `copy_to_bytes` is a cheap split), one copy for other buffers.
pub(crate) fn to_bytes<D: Buf>(mut data: D) -> Bytes {
    let n = data.remaining();
    data.copy_to_bytes(n)
}

/// Room in `v` for `more` elements, and for `least` in all: a stream's scratch vectors given
/// their room once, not grown step by step (the strip's patterns, the preamble's).
pub(crate) fn room<T>(v: &mut Vec<T>, more: usize, least: usize) {
    v.reserve(more.max(least.saturating_sub(v.len())));
}

/// The bytes `v` holds room for.
pub(crate) fn room_of<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// A thread's one spare of a per-stream [`Scratch`] value (a stream's strip patterns, a
/// tracker's preamble), kept when a stream ends for the next stream on the thread to start
/// with: giving a stream's vectors their room, then freeing them, is a fixed cost of every
/// stream.
pub(crate) type Spare<T> = LocalKey<Cell<Option<T>>>;

/// Per-stream scratch vectors whose room a [`Spare`] keeps for the next stream.
pub(crate) trait Scratch: Default + 'static {
    /// Whether a stream gave it room (else there is nothing to keep).
    fn has_room(&self) -> bool;
    /// The most room, in bytes, any of its vectors holds.
    fn largest_room(&self) -> usize;
    /// Forgets what the stream left, keeping the room: the state of `Default`.
    fn reset(&mut self);
}

/// The thread's spare, if it has one (none while the thread is being torn down).
pub(crate) fn take_spare<T: 'static>(spare: &'static Spare<T>) -> Option<T> {
    spare.try_with(Cell::take).ok().flatten()
}

/// Keeps `value`'s room, reset, as the thread's spare (leaving `value` new) when a stream gave
/// it room, none of its vectors holds more than `max_room` bytes, and the thread keeps none
/// yet.
pub(crate) fn keep_spare<T: Scratch>(spare: &'static Spare<T>, value: &mut T, max_room: usize) {
    if !value.has_room() || value.largest_room() > max_room {
        return;
    }
    let mut kept = std::mem::take(value);
    kept.reset();
    let _ = spare.try_with(|cell| {
        let old = cell.take();
        cell.set(Some(old.unwrap_or(kept)));
    });
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

/// Frames kept to be read whole: the first one inline, so that a body of one frame (nearly
/// every request, and every small JSON response) costs no allocation.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    first: Option<Bytes>,
    more: Vec<Bytes>,
    len: usize,
}

impl Frames {
    /// Keeps `frame`.
    pub(crate) fn push(&mut self, frame: Bytes) {
        self.len += frame.len();
        match self.first {
            None => self.first = Some(frame),
            Some(_) => self.more.push(frame),
        }
    }

    /// The bytes kept so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// One buffer of every frame kept (no copy when there is one), leaving `self` empty.
    pub(crate) fn take(&mut self) -> Bytes {
        let first = self.first.take().unwrap_or_default();
        self.len = 0;
        if self.more.is_empty() {
            return first;
        }
        let mut more = std::mem::take(&mut self.more);
        more.insert(0, first);
        concat(more)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_give_back_their_bytes_in_order() {
        let mut f = Frames::default();
        assert_eq!(f.take(), Bytes::new());
        let one = Bytes::from_static(b"one");
        f.push(one.clone());
        assert_eq!(f.len(), 3);
        let whole = f.take();
        assert_eq!(whole.as_ptr(), one.as_ptr(), "one frame is not copied");
        assert_eq!(f.len(), 0);
        for part in [&b"a"[..], b"bc", b"", b"def"] {
            f.push(Bytes::copy_from_slice(part));
        }
        assert_eq!(f.len(), 6);
        assert_eq!(&f.take()[..], b"abcdef");
        assert_eq!(f.take(), Bytes::new());
    }
}
