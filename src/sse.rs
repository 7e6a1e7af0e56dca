//! Incremental Server-Sent Events scanner over arbitrary chunk boundaries.
//!
//! The response bytes are never copied for the client: the scanner only *looks* at each frame.
//! It follows the WHATWG event-stream rules: lines end in `\n`, `\r\n` or `\r` (a CRLF may be
//! split across chunks), `:` starts a comment, `event:` names the event, several `data:` lines
//! join with `\n`, a leading UTF-8 BOM is skipped. Bytes are handled as bytes, so a multi-byte
//! character split across chunks is simply joined in the carried line.
//!
//! Two deliberate departures from the browser algorithm, both for accounting:
//! - at end of stream a pending event without its closing blank line is still dispatched (real
//!   captures end that way, e.g. Anthropic's SDK fixtures);
//! - a line longer than the cap is skipped (counted in [`SseScanner::overflowed`]) instead of
//!   buffered without bound; the stream itself still passes through untouched.
//!
//! An event whose lines all lie in one chunk is handed over in place; only an event that spans
//! chunks is copied, into buffers the scanner reuses, so steady-state scanning allocates nothing
//! per event.

use memchr::memchr2;

/// Default cap on one carried line (and on one event's data), in bytes.
pub(crate) const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// One dispatched event. `name` is empty when the event had no `event:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SseEvent<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) data: &'a [u8],
    /// The event was closed by its blank line; `false` for one dispatched at the end of the
    /// stream, which may have been cut short.
    pub(crate) complete: bool,
}

/// How a line ended, for a consumer that follows the bytes themselves (the strip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// An empty line: it ends the event (reported after the event it dispatches, if any).
    Blank,
    /// A comment (`:` first).
    Comment,
    /// A field (`data:`, `event:`, `id:`, `retry:` or an unknown name).
    Field,
    /// A line longer than the cap, skipped.
    Skipped,
}

/// What a scan reports. A closure `FnMut(&SseEvent, usize)` is a `Visit` that takes the
/// events only.
pub(crate) trait Visit {
    /// An event was dispatched; `end` is the offset in the chunk just past the line
    /// terminator that completed it (0 at the end of the stream).
    fn event(&mut self, event: &SseEvent<'_>, end: usize);

    /// A line ended at `end` (the offset in the chunk just past its terminator). Not called
    /// at the end of the stream for a line without a terminator.
    fn line_end(&mut self, _kind: LineKind, _end: usize) {}
}

impl<F: FnMut(&SseEvent<'_>, usize)> Visit for F {
    #[inline(always)]
    fn event(&mut self, event: &SseEvent<'_>, end: usize) {
        self(event, end)
    }
}

/// The incremental scanner. Feed it every data frame in order, then call
/// [`finish`](SseScanner::finish) once at the end of the stream.
#[derive(Debug)]
pub(crate) struct SseScanner {
    /// The partial line carried from earlier chunks.
    carry: Vec<u8>,
    /// The data of the event being built.
    data: Vec<u8>,
    /// The name of the event being built.
    name: Vec<u8>,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` opening the next one belongs to it.
    after_cr: bool,
    /// No line has been completed yet (a BOM may still open the stream).
    first_line: bool,
    /// The current line is over the cap and is being skipped to its end.
    skipping: bool,
    max_line: usize,
    overflows: u64,
    /// The last `event:` line [`whole_event`](Self::whole_event) searched, with its terminator
    /// (`\n` or `\r\n`): streams repeat a few names, and a comparison costs less than the
    /// search.
    event_line: Vec<u8>,
}

impl SseScanner {
    pub(crate) fn new(max_line: usize) -> Self {
        SseScanner {
            carry: Vec::new(),
            data: Vec::new(),
            name: Vec::new(),
            has_data: false,
            after_cr: false,
            first_line: true,
            skipping: false,
            max_line,
            overflows: 0,
            event_line: Vec::new(),
        }
    }

    /// How many lines or events were skipped for exceeding the cap.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflows
    }

    /// Scans one chunk. `on_event` gets each completed event and the offset in `chunk` just past
    /// the line terminator that completed it (and, for a [`Visit`] that wants them, each line
    /// end).
    pub(crate) fn feed(&mut self, chunk: &[u8], on_event: &mut impl Visit) {
        let mut pos = 0;
        // An empty chunk says nothing about the `\n` that may complete a `\r`.
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk.first() == Some(&b'\n') {
                pos = 1;
            }
        }
        let mut held = Held::default();
        while let Some(&first) = chunk.get(pos) {
            // Between events, an event that lies whole in the chunk takes the short way.
            if self.between_events() && held.name.is_none() {
                if let Some(next) = self.whole_event(chunk, pos, on_event) {
                    pos = next;
                    continue;
                }
            }
            let rest = &chunk[pos..];
            // A blank line (the end of every event) needs no search.
            let i = if first == b'\n' || first == b'\r' {
                0
            } else {
                match line_break(rest) {
                    Some(i) => i,
                    None => {
                        self.carry_partial(rest);
                        break;
                    }
                }
            };
            let mut next = pos + i + 1;
            if rest[i] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let kind = if self.skipping {
                self.skipping = false;
                self.carry.clear();
                LineKind::Skipped
            } else if self.carry.is_empty() && i <= self.max_line {
                let line = Line {
                    bytes: &rest[..i],
                    at: Some(pos),
                };
                self.line(line, chunk, &mut held, next, on_event)
            } else if self.carry.len() + i > self.max_line {
                self.overflows += 1;
                self.carry.clear();
                LineKind::Skipped
            } else {
                // Only the chunk's first line completes a carried one, so nothing is held yet.
                let mut carried = std::mem::take(&mut self.carry);
                carried.extend_from_slice(&rest[..i]);
                let line = Line {
                    bytes: &carried,
                    at: None,
                };
                let kind = self.line(line, chunk, &mut held, next, on_event);
                carried.clear();
                self.carry = carried;
                kind
            };
            on_event.line_end(kind, next);
            pos = next;
        }
        // What the open event holds in this chunk is copied before the chunk goes.
        if let Some(name) = held.name {
            self.name.clear();
            self.name.extend_from_slice(&chunk[name]);
        }
        if let Some(data) = held.data {
            self.data.extend_from_slice(&chunk[data]);
        }
    }

    /// No event is open and no line is carried or skipped: the next line starts afresh (and
    /// it is not the stream's first, which may open with a BOM).
    #[inline(always)]
    fn between_events(&self) -> bool {
        !self.has_data
            && !self.skipping
            && !self.first_line
            && self.carry.is_empty()
            && self.name.is_empty()
    }

    /// The common shape of an event, whole in `chunk` at `pos`: an optional `event:` line, one
    /// `data:` line and the blank line, none over the cap, each ending in `\n` or `\r\n` (or
    /// a lone `\r` that is not the chunk's last byte). It is dispatched (and its line ends
    /// reported) exactly as the line-by-line path would, and the offset past its blank line
    /// returned; `None` (nothing done) for any other shape, which that path then reads.
    #[inline(always)]
    fn whole_event(
        &mut self,
        chunk: &[u8],
        pos: usize,
        on_event: &mut impl Visit,
    ) -> Option<usize> {
        let rest = chunk.get(pos..)?;
        // The `event:` line and its value with where the line ends, if there is one, then the
        // line after it.
        let (named, (line, end)) =
            if !self.event_line.is_empty() && rest.starts_with(&self.event_line) {
                // The last event's `event:` line again, terminator included: it ends where that
                // one did (it holds no other terminator), found without a search.
                let len = self.event_line.len();
                let terminator = if self.event_line.ends_with(b"\r\n") {
                    2
                } else {
                    1
                };
                let value = &rest[b"event:".len()..len - terminator];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (Some((value, pos + len)), self.line_at(chunk, pos + len)?)
            } else {
                let (line, end) = self.line_at(chunk, pos)?;
                match line.strip_prefix(b"event:") {
                    Some(value) => {
                        if chunk[end - 1] == b'\n' {
                            self.event_line.clear();
                            self.event_line.extend_from_slice(&chunk[pos..end]);
                        }
                        let value = value.strip_prefix(b" ").unwrap_or(value);
                        (Some((value, end)), self.line_at(chunk, end)?)
                    }
                    None => (None, (line, end)),
                }
            };
        let data = line.strip_prefix(b"data:")?;
        // Within the line's cap, the data is within its own (`data:` is longer than the `\n`
        // the cap counts for joining lines).
        let data = data.strip_prefix(b" ").unwrap_or(data);
        let blank_end = terminated(chunk, end)?;
        if let Some((_, name_end)) = named {
            on_event.line_end(LineKind::Field, name_end);
        }
        on_event.line_end(LineKind::Field, end);
        let event = SseEvent {
            name: named.map_or(&[][..], |(name, _)| name),
            data,
            complete: true,
        };
        on_event.event(&event, blank_end);
        on_event.line_end(LineKind::Blank, blank_end);
        Some(blank_end)
    }

    /// The line at `pos`, when its terminator lies in `chunk` (see [`terminated`]) and it is
    /// within the cap: its bytes and the offset past its terminator.
    #[inline(always)]
    fn line_at<'c>(&self, chunk: &'c [u8], pos: usize) -> Option<(&'c [u8], usize)> {
        let rest = chunk.get(pos..)?;
        let i = line_break(rest)?;
        if i > self.max_line {
            return None;
        }
        Some((&rest[..i], terminated(chunk, pos + i)?))
    }

    /// Ends the stream: a carried line and a pending event are dispatched.
    pub(crate) fn finish(&mut self, on_event: &mut impl Visit) {
        let mut held = Held::default();
        if !self.carry.is_empty() && !self.skipping {
            let carried = std::mem::take(&mut self.carry);
            let line = Line {
                bytes: &carried,
                at: None,
            };
            self.line(line, &[], &mut held, 0, on_event);
        }
        self.carry.clear();
        self.skipping = false;
        self.dispatch(&[], &mut held, 0, on_event);
    }

    fn carry_partial(&mut self, part: &[u8]) {
        if self.skipping {
            return;
        }
        if self.carry.len() + part.len() > self.max_line {
            self.overflows += 1;
            self.carry.clear();
            self.skipping = true;
        } else {
            self.carry.extend_from_slice(part);
        }
    }

    /// One complete line (without its terminator). `chunk` and `held` are the chunk being
    /// scanned and what the open event holds of it.
    fn line(
        &mut self,
        line: Line<'_>,
        chunk: &[u8],
        held: &mut Held,
        end: usize,
        on_event: &mut impl Visit,
    ) -> LineKind {
        let mut bytes = line.bytes;
        if self.first_line {
            self.first_line = false;
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let Some(&first) = bytes.first() else {
            self.dispatch(chunk, held, end, on_event);
            return LineKind::Blank;
        };
        if first == b':' {
            return LineKind::Comment;
        }
        // The two fields that matter, then any field (`id`, `retry`, unknown, or one without
        // a colon).
        let (field, value) = if let Some(v) = bytes.strip_prefix(b"data:") {
            (Field::Data, v)
        } else if let Some(v) = bytes.strip_prefix(b"event:") {
            (Field::Event, v)
        } else {
            let (name, v) = match memchr::memchr(b':', bytes) {
                Some(c) => (&bytes[..c], &bytes[c + 1..]),
                None => (bytes, &b""[..]),
            };
            let field = match name {
                b"data" => Field::Data,
                b"event" => Field::Event,
                _ => return LineKind::Field,
            };
            (field, v)
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        // Where `value` lies in the chunk, when the line is the chunk's own.
        let span = line
            .at
            .map(|at| at + line.bytes.len() - value.len()..at + line.bytes.len());
        match field {
            Field::Data => {
                let len = match &held.data {
                    Some(r) => r.len(),
                    None => self.data.len(),
                };
                if len + value.len() + 1 > self.max_line {
                    self.overflows += 1;
                    self.data.clear();
                    held.data = None;
                    self.has_data = false;
                    return LineKind::Field;
                }
                match span {
                    // The event's first data line: held in the chunk, copied only if the event
                    // outlives the chunk.
                    Some(span) if !self.has_data => held.data = Some(span),
                    _ => {
                        if let Some(r) = held.data.take() {
                            self.data.extend_from_slice(&chunk[r]);
                        }
                        if self.has_data {
                            self.data.push(b'\n');
                        }
                        self.data.extend_from_slice(value);
                    }
                }
                self.has_data = true;
            }
            Field::Event => {
                self.name.clear();
                held.name = None;
                match span {
                    Some(span) => held.name = Some(span),
                    None => self.name.extend_from_slice(value),
                }
            }
        }
        LineKind::Field
    }

    fn dispatch(&mut self, chunk: &[u8], held: &mut Held, end: usize, on_event: &mut impl Visit) {
        let name = held.name.take();
        let data = held.data.take();
        if self.has_data {
            on_event.event(
                &SseEvent {
                    name: name.map_or(&self.name[..], |r| &chunk[r]),
                    data: data.map_or(&self.data[..], |r| &chunk[r]),
                    complete: end != 0,
                },
                end,
            );
        }
        self.has_data = false;
        self.data.clear();
        self.name.clear();
    }
}

/// The first `\n` or `\r` of `bytes`: `memchr2` with the needles set up once. Every event
/// searches its data line, and `memchr2` finds its routine for the CPU and fills its vectors
/// with the two bytes again on each call (≈ 30 instructions of a ≈ 130-instruction search
/// over a 200-byte line); a searcher built once goes straight to the AVX2 loop.
#[inline(always)]
fn line_break(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use memchr::arch::x86_64::avx2::memchr::Two;
        use std::sync::LazyLock;
        /// `None` when the CPU has no AVX2 (then `memchr2` picks SSE2).
        static AVX2: LazyLock<Option<Two>> = LazyLock::new(|| Two::new(b'\n', b'\r'));
        if let Some(two) = AVX2.as_ref() {
            return two.find(bytes);
        }
    }
    memchr2(b'\n', b'\r', bytes)
}

/// The offset past the line terminator at `at`: `\n`, `\r\n`, or a `\r` followed by another
/// byte of the chunk; `None` when there is none, or a `\r` ends the chunk (its `\n` may open
/// the next one).
#[inline(always)]
fn terminated(chunk: &[u8], at: usize) -> Option<usize> {
    match chunk.get(at..)? {
        [b'\n', ..] => Some(at + 1),
        [b'\r', b'\n', ..] => Some(at + 2),
        [b'\r', _, ..] => Some(at + 1),
        _ => None,
    }
}

/// A complete line: its bytes, and where they start in the chunk being scanned (`None` for a
/// line joined from carried bytes).
struct Line<'a> {
    bytes: &'a [u8],
    at: Option<usize>,
}

/// The fields the scanner keeps.
enum Field {
    Data,
    Event,
}

/// What the open event holds in the chunk being scanned, as ranges of it, instead of copies:
/// an event that starts and ends in one frame (most of them) is never copied.
#[derive(Default)]
struct Held {
    name: Option<std::ops::Range<usize>>,
    data: Option<std::ops::Range<usize>>,
}

#[cfg(test)]
mod tests;
