//! Removes from an OpenAI chat stream exactly what the layer's own rewrite added.
//!
//! When the layer added `stream_options.include_usage` to a request, the provider answers with
//! one extra usage-only event (`"choices":[]` and a `usage` object) and, in newer API versions,
//! a `"usage":null` member on every other chunk. [`Strip`] removes both and nothing else, so
//! that the client receives the bytes it would have received without the rewrite:
//!
//! - Bytes between events (comments such as `: keep-alive`, extra blank lines) are released as
//!   soon as their line is complete.
//! - The bytes of an event are held until its blank line, then released, or dropped when it is
//!   the usage-only event. Only the event being completed is held, and never more than the
//!   line cap (`max_sse_line`): an event that grows past it cannot be the small usage-only
//!   event, so what is held is released and the rest of the event passes as it streams.
//! - `"usage":null` is removed only where it is a member of the top-level object of an event's
//!   data (with the comma that separated it, on the same `data:` line), by [`NullUsage`], one
//!   pass that skips to the few bytes that can matter and holds at most a few dozen bytes, so
//!   it works on lines that pass as they stream too. The same text inside a string or a
//!   nested object stays.
//!
//! The scanner ([`SseScanner`]) says where lines end and what they were; the strip follows the
//! bytes. This is the one place the layer changes response bytes, so it is the one place it
//! copies them, once: into one buffer that keeps what is released and what is held, whose
//! released part becomes the frame it returns (split off, not copied again); other streams are
//! never copied.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::protocol::json::{self, Reader};
use crate::sse::{LineKind, SseEvent, SseScanner, Visit};

mod null_usage;
mod repeat;

use null_usage::{DATA, KEY, NULL, NullUsage};
use repeat::{Line, Repeat};

/// The state of a stripped stream.
#[derive(Debug)]
pub(crate) struct Strip {
    /// The most a held event (or line between events) may hold.
    max: usize,
    /// The bytes decided for the current frame (`..held_at`), then the open unit: the event
    /// being completed, or the line between events (`held_at..`). One buffer, so that
    /// releasing what is held moves an index, not bytes, and dropping it truncates; the frame
    /// sent is split off its front, so a stream's frames share a few allocations.
    buf: BytesMut,
    /// Where the open unit starts in `buf`.
    held_at: usize,
    /// The open unit grew past `max`: its bytes go out as they come.
    passing: bool,
    /// A field line has been seen since the last blank line: an event is open.
    in_event: bool,
    /// The open event is the usage-only one (set by the dispatch before its blank line).
    drop_event: bool,
    /// A line of the open event may hold a `"usage"` that is not followed by `null`: its data
    /// is parsed at the dispatch. Lines that fit a learned pattern whose `"usage"`s are all
    /// `null`, or were searched when they did not, leave it unset (see
    /// [`Repeat::filter_or_hold`]), so a stream's chunks are not searched for the key again.
    check_usage: bool,
    /// The first byte of the current line, once seen.
    line_start: Option<u8>,
    /// Removes `"usage":null` from the current line.
    line: NullUsage,
    /// The stream's repeating `data:` lines, filtered without walking them again.
    repeat: Repeat,
    /// A whole `data:` line of the open event that may be the usage-only chunk's, held as it
    /// came (at this offset of `buf`, this long) and filtered only when it must be: before
    /// anything else is filtered, released or measured against the cap. A usage chunk is
    /// dropped without being filtered (or its pattern learned).
    unfiltered: Option<(usize, usize)>,
    /// Room to move what follows an [unfiltered](Self::unfiltered) line while it is filtered.
    scratch: Vec<u8>,
    /// The last frame ended with a line's `\r`: where a `\n` opening the next frame goes.
    cr: Option<Fate>,
    /// Bytes of the current frame already routed.
    pos: usize,
    /// How many bytes of a BOM opened the stream so far (`None` once decided): a BOM belongs
    /// to no event, so it goes out on its own.
    bom: Option<usize>,
}

/// The buffer a stream starts with: room for a short stream's frames, or a dozen of a long
/// one's, before it is reclaimed (once the frames sent from it are dropped) or replaced.
const START: usize = 4 * 1024;

/// The most buffer capacity a stream keeps between frames.
const KEEP: usize = 16 * 1024;

/// The byte order mark a stream may open with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the bytes of a finished line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Held,
    Out,
    Dropped,
}

impl Strip {
    /// A strip holding at most `max` bytes of an event.
    pub(crate) fn new(max: usize) -> Self {
        Strip {
            max,
            buf: BytesMut::with_capacity(START),
            held_at: 0,
            passing: false,
            in_event: false,
            drop_event: false,
            check_usage: false,
            line_start: None,
            line: NullUsage::new(),
            repeat: Repeat::new(),
            unfiltered: None,
            scratch: Vec::new(),
            cr: None,
            pos: 0,
            bom: Some(0),
        }
    }

    /// Scans `frame` with `scanner` (each event also goes to `on_event`, which may say whether
    /// it is the usage-only chunk, see [`Observation::usage_only`]) and returns the bytes to
    /// send for it.
    ///
    /// [`Observation::usage_only`]: crate::protocol::Observation::usage_only
    pub(crate) fn feed(
        &mut self,
        scanner: &mut SseScanner,
        frame: &[u8],
        on_event: &mut impl FnMut(&SseEvent<'_>) -> Option<bool>,
    ) -> Bytes {
        self.pos = 0;
        if let Some(fate) = self.cr.take_if(|_| !frame.is_empty()) {
            if frame[0] == b'\n' {
                // The second byte of a CRLF whose `\r` ended the last frame: it follows the
                // line it ends.
                self.pos = 1;
                match fate {
                    Fate::Held if self.held_under_max() => self.buf.extend_from_slice(b"\n"),
                    Fate::Held => {
                        self.pass();
                        self.buf.extend_from_slice(b"\n");
                        self.release();
                    }
                    Fate::Out => {
                        self.buf.extend_from_slice(b"\n");
                        self.release();
                    }
                    Fate::Dropped => {}
                }
            }
        }
        self.peel_bom(frame);
        scanner.feed(
            frame,
            &mut Follow {
                strip: self,
                frame,
                on_event,
            },
        );
        let rest = &frame[self.pos..];
        self.route(rest);
        self.take_released()
    }

    /// End of stream: the scanner's last event is read, and what is still held is sent, unless
    /// it is the usage-only event.
    pub(crate) fn finish(
        &mut self,
        scanner: &mut SseScanner,
        on_event: &mut impl FnMut(&SseEvent<'_>) -> Option<bool>,
    ) -> Bytes {
        scanner.finish(&mut Follow {
            strip: self,
            frame: &[],
            on_event,
        });
        self.line.end_line(&mut self.buf);
        // Only an event that was held whole can be the one to drop.
        if self.drop_event {
            self.buf.truncate(self.held_at);
            self.unfiltered = None;
        } else {
            self.release();
        }
        self.take_released()
    }

    /// How many bytes the open unit holds.
    fn held_len(&self) -> usize {
        self.buf.len() - self.held_at
    }

    /// Whether the open unit holds less than the cap (an unfiltered line is filtered first
    /// unless it is under the cap as it is: the filter only removes bytes).
    fn held_under_max(&mut self) -> bool {
        if self.held_len() < self.max {
            return true;
        }
        self.settle();
        self.held_len() < self.max
    }

    /// Filters the [unfiltered](Self::unfiltered) line, if any, where it stands; what was
    /// put after it (lines the filter lets through) moves after its output.
    #[inline]
    fn settle(&mut self) {
        if let Some((at, len)) = self.unfiltered.take() {
            self.filter_unfiltered(at, len);
        }
    }

    /// [`settle`](Self::settle)'s work, for the rare line held that its event keeps.
    #[cold]
    #[inline(never)]
    fn filter_unfiltered(&mut self, at: usize, len: usize) {
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.buf[at..]);
        self.buf.truncate(at);
        self.repeat
            .filter_line(&mut self.line, &self.scratch[..len], &mut self.buf);
        self.line.end_line(&mut self.buf);
        self.buf.extend_from_slice(&self.scratch[len..]);
    }

    /// What the open unit holds is decided: it goes out with the frame.
    fn release(&mut self) {
        self.settle();
        self.held_at = self.buf.len();
    }

    /// The bytes decided for this frame, split off the buffer (a reference count, no copy);
    /// what the buffer holds stays for the next frame, and its room is reused once the frames
    /// sent from it are dropped.
    fn take_released(&mut self) -> Bytes {
        let at = std::mem::take(&mut self.held_at);
        if at == 0 {
            return Bytes::new();
        }
        // Only the open unit, after `at`, is ever unfiltered.
        if let Some((line, _)) = &mut self.unfiltered {
            *line -= at;
        }
        let released = self.buf.split_to(at).freeze();
        // One large frame should not keep its buffer for the rest of a long stream: the rest
        // moves to a buffer of its own (the large one is freed with the frames sent from it).
        if self.buf.capacity() + at > KEEP && self.buf.len() <= KEEP {
            let mut buf = BytesMut::with_capacity(START.max(self.buf.len()));
            buf.extend_from_slice(&self.buf);
            self.buf = buf;
        }
        released
    }

    /// Sends a BOM opening the stream out on its own; bytes that only looked like one go the
    /// way of their line.
    fn peel_bom(&mut self, frame: &[u8]) {
        while let Some(n) = self.bom {
            let Some(&b) = frame.get(self.pos) else {
                return;
            };
            if b == BOM[n] {
                self.pos += 1;
                if n + 1 == BOM.len() {
                    self.buf.extend_from_slice(BOM);
                    self.release();
                    self.bom = None;
                } else {
                    self.bom = Some(n + 1);
                }
            } else {
                self.bom = None;
                self.route(&BOM[..n]);
            }
        }
    }

    /// Sends `bytes` of the current line through the `"usage":null` filter into the open unit,
    /// switching to passing once it holds `max` bytes.
    fn route(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.settle();
        self.check_usage = true;
        self.line_start.get_or_insert(bytes[0]);
        if self.passing {
            self.line.filter(bytes, &mut self.buf);
            self.release();
            return;
        }
        // The filter may let out what it holds with these bytes: count it in.
        let room = self
            .max
            .saturating_sub(self.held_len() + self.line.held.len());
        if bytes.len() <= room {
            self.line.filter(bytes, &mut self.buf);
            return;
        }
        self.line.filter(&bytes[..room], &mut self.buf);
        self.pass();
        self.line.filter(&bytes[room..], &mut self.buf);
        self.release();
    }

    /// Routes a line that ends with `bytes`. One that lies whole in them and fits under the
    /// cap skips the filter's walk: a `data:` line goes through [`Repeat`], which gives what
    /// the filter would (or holds it unfiltered when it may be the usage-only chunk's), and
    /// any other line is one the filter lets through unchanged (it removes nothing outside
    /// `data:` lines, and keeps an object left open by an earlier data line waiting).
    fn route_line(&mut self, bytes: &[u8]) {
        let data = bytes.starts_with(DATA);
        let through = |s: &Self| !data && s.whole(bytes) && s.line.is_unread();
        // Under the cap with an unfiltered line as it is, a line is under it with the line
        // filtered: one the filter lets through may follow the unfiltered line, anything else
        // is routed after it is filtered.
        let mut passes = through(self);
        if !passes {
            self.settle();
            passes = through(self);
        }
        let whole = passes || self.whole(bytes);
        if passes {
            self.line_start = Some(bytes[0]);
            self.buf.extend_from_slice(bytes);
        } else if whole && self.line.is_fresh() {
            self.line_start = Some(bytes[0]);
            let at = self.buf.len();
            match self
                .repeat
                .filter_or_hold(&mut self.line, bytes, &mut self.buf, true)
            {
                Line::NoUsage => {}
                Line::Unknown => self.check_usage = true,
                Line::Held => {
                    self.buf.extend_from_slice(bytes);
                    self.unfiltered = Some((at, bytes.len()));
                    self.check_usage = true;
                }
            }
        } else {
            self.route(bytes);
        }
    }

    /// `bytes` are a whole line that fits under the cap after what the open unit holds.
    fn whole(&self, bytes: &[u8]) -> bool {
        self.line_start.is_none()
            && !self.passing
            && !bytes.is_empty()
            && bytes.len() <= self.max.saturating_sub(self.held_len())
    }

    /// The open unit is over the cap: what it holds goes out, and the rest as it comes.
    fn pass(&mut self) {
        self.passing = true;
        self.release();
    }

    /// A line of `frame` ended at `end`.
    fn line_end(&mut self, frame: &[u8], kind: LineKind, end: usize) {
        let start = self.pos.min(end);
        self.route_line(&frame[start..end]);
        self.pos = end;
        self.line.end_line(&mut self.buf);
        if self.passing {
            self.release();
        }
        let comment = match kind {
            LineKind::Skipped => self.line_start == Some(b':'),
            k => k == LineKind::Comment,
        };
        let mut fate = Fate::Out;
        match kind {
            LineKind::Blank => {
                if self.in_event && self.drop_event && !self.passing {
                    self.buf.truncate(self.held_at);
                    self.unfiltered = None;
                    fate = Fate::Dropped;
                } else {
                    // Filters an unfiltered line first, in its event.
                    self.release();
                }
                self.line.end_event();
                self.in_event = false;
                self.passing = false;
                self.drop_event = false;
                self.check_usage = false;
            }
            _ if comment && !self.in_event => {
                self.release();
                self.passing = false;
            }
            _ => {
                self.in_event = true;
                if !self.passing {
                    fate = Fate::Held;
                }
            }
        }
        self.line_start = None;
        if end == frame.len() && frame.last() == Some(&b'\r') {
            self.cr = Some(fate);
        }
    }
}

impl Drop for Strip {
    fn drop(&mut self) {
        self.repeat.finish();
    }
}

/// The scanner's view, followed by the strip and passed on to the tracker.
struct Follow<'a, 'f, F> {
    strip: &'a mut Strip,
    frame: &'f [u8],
    on_event: &'a mut F,
}

impl<F: FnMut(&SseEvent<'_>) -> Option<bool>> Visit for Follow<'_, '_, F> {
    fn event(&mut self, event: &SseEvent<'_>, _end: usize) {
        let known = (self.on_event)(event);
        self.strip.drop_event =
            !self.strip.passing && self.strip.check_usage && usage_only_known(event.data, known);
    }

    fn line_end(&mut self, kind: LineKind, end: usize) {
        self.strip.line_end(self.frame, kind, end);
    }
}

/// Finds `"usage"`; built once (a finder's set-up costs more than searching a chunk).
static USAGE_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));

/// [`is_usage_only`], given what the tracker `known` of the chunk (see
/// [`Observation::usage_only`]): its answer where it is the check's, so that the chunk is not
/// read again.
///
/// The tracker read the chunk whole with the plain reader. On printable ASCII without a
/// backslash (where that reader and serde agree) the read has taken the whole text as JSON
/// with `choices` and `usage` at most once each, as the check's own read requires, and the
/// check is then whether `choices` is an empty array and `usage` not null. A `usage` read
/// plainly is an object, so its key is written `"usage"` and not followed by `null`: the
/// check's search finds it.
///
/// [`Observation::usage_only`]: crate::protocol::Observation::usage_only
fn usage_only_known(data: &[u8], known: Option<bool>) -> bool {
    match known {
        Some(usage_only) if json::plain_ascii(data) => usage_only,
        _ => is_usage_only(data),
    }
}

/// A chunk with no choices and a usage object: the one the rewrite asked for.
fn is_usage_only(data: &[u8]) -> bool {
    // Every other chunk of a rewritten stream carries `"usage":null`: only a usage that is
    // not null is worth parsing the chunk for.
    if !may_be_usage(data) {
        return false;
    }
    read_usage_only(data).unwrap_or_else(|| parse_usage_only(data))
}

/// [`is_usage_only`]'s parse, by serde: the chunk's `choices` is an empty array and its
/// `usage` is there and not null.
fn parse_usage_only(data: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
    }
    match serde_json::from_slice::<Chunk>(data) {
        Ok(c) => c.usage.is_some() && c.choices.is_some_and(|c| c.is_empty()),
        Err(_) => false,
    }
}

/// [`parse_usage_only`]'s answer, read by the layer's JSON [`Reader`] (a third of serde's
/// instructions on the usage chunk), or `None` to leave it to serde.
///
/// Only for data of printable ASCII without a backslash, where the two agree: every string
/// is then read as written (no escape, control character or UTF-8 for serde to refuse or
/// decode), and the reader follows JSON's grammar for the rest. Anything else it gives up on
/// (a key twice, a `choices` that is not an array, deep nesting, malformed bytes) goes to
/// serde too, so the answer is serde's for all data.
fn read_usage_only(data: &[u8]) -> Option<bool> {
    if !json::plain_ascii(data) {
        return None;
    }
    let mut reader = Reader::new(data);
    // Whether `choices` is an empty array, whether `usage` is not null; `None` until read.
    let (mut no_choices, mut usage) = (None, None);
    reader.object(|r, key| {
        let (seen, value) = match key {
            b"choices" => (
                &mut no_choices,
                if r.null() { false } else { empty_array(r)? },
            ),
            b"usage" => (&mut usage, !r.null() && r.skip().map(|()| true)?),
            _ => return r.skip(),
        };
        // A member twice is an error for serde: it decides.
        seen.replace(value).is_none().then_some(())
    })?;
    reader.end()?;
    Some(usage == Some(true) && no_choices == Some(true))
}

/// Reads an array: whether it is empty.
fn empty_array(r: &mut Reader<'_>) -> Option<bool> {
    let mut items = 0usize;
    r.array(|r| {
        items += 1;
        r.skip()
    })?;
    Some(items == 0)
}

/// Whether `bytes` have a `"usage"` that is not followed by `: null`: data without one is
/// not [usage-only](is_usage_only), nor are data lines without one joined (a key lies within
/// a line, and what follows it there follows it in the data).
fn may_be_usage(bytes: &[u8]) -> bool {
    !USAGE_KEY
        .find_iter(bytes)
        .all(|at| is_null_after(&bytes[at + KEY.len()..]))
}

/// Whether `rest` (what follows a `"usage"` key) is `: null`, whitespace allowed.
fn is_null_after(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    rest.strip_prefix(b":")
        .is_some_and(|r| r.trim_ascii_start().starts_with(NULL))
}

#[cfg(test)]
mod tests;
