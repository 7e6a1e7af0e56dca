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
                match memchr2(b'\n', b'\r', rest) {
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
    #[inline]
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
    #[inline]
    fn whole_event(
        &mut self,
        chunk: &[u8],
        pos: usize,
        on_event: &mut impl Visit,
    ) -> Option<usize> {
        let rest = chunk.get(pos..)?;
        let (mut line, mut end) =
            if !self.event_line.is_empty() && rest.starts_with(&self.event_line) {
                // The last event's `event:` line again, terminator included: it ends where that
                // one did (it holds no other terminator), found without a search.
                let len = self.event_line.len();
                let terminator = if self.event_line.ends_with(b"\r\n") {
                    2
                } else {
                    1
                };
                (&rest[..len - terminator], pos + len)
            } else {
                let (line, end) = self.line_at(chunk, pos)?;
                if line.starts_with(b"event:") && chunk[end - 1] == b'\n' {
                    self.event_line.clear();
                    self.event_line.extend_from_slice(&chunk[pos..end]);
                }
                (line, end)
            };
        let mut named = None;
        if let Some(value) = line.strip_prefix(b"event:") {
            named = Some((value.strip_prefix(b" ").unwrap_or(value), end));
            (line, end) = self.line_at(chunk, end)?;
        }
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
    #[inline]
    fn line_at<'c>(&self, chunk: &'c [u8], pos: usize) -> Option<(&'c [u8], usize)> {
        let rest = chunk.get(pos..)?;
        let i = memchr2(b'\n', b'\r', rest)?;
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

/// The offset past the line terminator at `at`: `\n`, `\r\n`, or a `\r` followed by another
/// byte of the chunk; `None` when there is none, or a `\r` ends the chunk (its `\n` may open
/// the next one).
#[inline]
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(chunks: &[&[u8]], max: usize) -> (Vec<(String, String)>, u64) {
        let mut s = SseScanner::new(max);
        let mut out = Vec::new();
        let mut push = |e: &SseEvent<'_>, _| {
            out.push((
                String::from_utf8(e.name.to_vec()).unwrap(),
                String::from_utf8(e.data.to_vec()).unwrap(),
            ))
        };
        for c in chunks {
            s.feed(c, &mut push);
        }
        s.finish(&mut push);
        (out, s.overflowed())
    }

    fn ev(name: &str, data: &str) -> (String, String) {
        (name.to_owned(), data.to_owned())
    }

    #[test]
    fn lf_crlf_cr_comments_names_and_multiline_data() {
        let body = b"\xEF\xBB\xBF: keep-alive\nevent: a\ndata: 1\ndata:2\n\r\ndata: x\r\rretry: 5\nid: 7\ndata: y\r\n\r\n";
        let (events, overflow) = scan(&[body], DEFAULT_MAX_LINE);
        assert_eq!(events, vec![ev("a", "1\n2"), ev("", "x"), ev("", "y")]);
        assert_eq!(overflow, 0);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_terminator() {
        let (events, _) = scan(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], 64);
        assert_eq!(events, vec![ev("", "a"), ev("", "b")]);
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_keeps_them_one_terminator() {
        let (events, _) = scan(&[b"data: a\r", b"", b"\n\r", b"", b"\ndata: b\n\n"], 64);
        assert_eq!(events, vec![ev("", "a"), ev("", "b")]);
    }

    #[test]
    fn every_line_end_is_reported_with_its_kind() {
        struct Lines(Vec<(LineKind, usize)>, usize);
        impl Visit for Lines {
            fn event(&mut self, _: &SseEvent<'_>, _: usize) {
                self.1 += 1;
            }
            fn line_end(&mut self, kind: LineKind, end: usize) {
                self.0.push((kind, end));
            }
        }
        let mut lines = Lines(Vec::new(), 0);
        let mut s = SseScanner::new(8);
        s.feed(b": c\r\nevent: e\ndata: 123456789\ndata: x\r\r", &mut lines);
        use LineKind::*;
        assert_eq!(
            lines.0,
            vec![
                (Comment, 5),
                (Field, 14),
                (Skipped, 30),
                (Field, 38),
                (Blank, 39)
            ]
        );
        assert_eq!(lines.1, 1);
    }

    #[test]
    fn pending_event_is_dispatched_at_end_of_stream() {
        let (events, _) = scan(&[b"event: message_stop\ndata: {}"], 64);
        assert_eq!(events, vec![ev("message_stop", "{}")]);
    }

    #[test]
    fn split_multibyte_utf8_is_joined() {
        let text = "data: h\u{1F600}i\n\n".as_bytes();
        let (events, _) = scan(&[&text[..9], &text[9..]], 64);
        assert_eq!(events, vec![ev("", "h\u{1F600}i")]);
    }

    #[test]
    fn oversize_line_is_skipped_and_counted_then_scanning_resumes() {
        let big = format!("data: {}\n\ndata: ok\n\n", "x".repeat(100));
        let (events, overflow) = scan(&[&big.as_bytes()[..50], &big.as_bytes()[50..]], 32);
        assert_eq!(events, vec![ev("", "ok")]);
        assert_eq!(overflow, 1);
    }

    #[test]
    fn end_offsets_point_past_the_blank_line() {
        let body = b"data: a\n\ndata: b\n\n";
        let mut s = SseScanner::new(64);
        let mut ends = Vec::new();
        s.feed(body, &mut |_: &SseEvent<'_>, end| ends.push(end));
        assert_eq!(ends, vec![9, 18]);
    }

    proptest! {
        #[test]
        fn any_framing_yields_the_same_events(
            body in proptest::collection::vec(prop_oneof![
                Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'),
                Just(b't'), Just(b'e'), Just(b'v'), Just(0xEF), Just(0xBB), Just(0xBF), any::<u8>()
            ], 0..300),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            max in 4usize..64,
        ) {
            let mut idx: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
            idx.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for i in idx { chunks.push(&body[last..i]); last = i; }
            chunks.push(&body[last..]);
            prop_assert_eq!(scan_raw(&chunks, max), scan_raw(&[&body], max));
        }
    }

    /// Everything a scan reports, at offsets in the whole body: events (name, data, whether
    /// complete, end) and line ends (kind, end), in order, and the overflow count.
    #[derive(Debug, PartialEq, Eq)]
    enum Report {
        Event(Vec<u8>, Vec<u8>, bool, usize),
        Line(LineKind, usize),
    }

    fn reports(chunks: &[&[u8]], max: usize) -> (Vec<Report>, u64) {
        struct Log {
            base: usize,
            out: Vec<Report>,
        }
        impl Visit for Log {
            fn event(&mut self, e: &SseEvent<'_>, end: usize) {
                let end = if end == 0 { 0 } else { self.base + end };
                let ev = Report::Event(e.name.to_vec(), e.data.to_vec(), e.complete, end);
                self.out.push(ev);
            }
            fn line_end(&mut self, kind: LineKind, end: usize) {
                self.out.push(Report::Line(kind, self.base + end));
            }
        }
        let mut s = SseScanner::new(max);
        let mut log = Log {
            base: 0,
            out: Vec::new(),
        };
        for c in chunks {
            s.feed(c, &mut log);
            log.base += c.len();
        }
        s.finish(&mut log);
        (log.out, s.overflowed())
    }

    proptest! {
        /// Whole events in one chunk take the short way; fed a byte at a time, no event is
        /// whole in a chunk: both report the same events and line ends.
        #[test]
        fn the_short_way_reports_what_the_line_by_line_path_does(
            lines in proptest::collection::vec(prop_oneof![
                "data: \\{[a-z\\\\:\\r]{0,12}\\}\n".prop_map(String::into_bytes),
                "data:[a-z ]{0,6}\n".prop_map(String::into_bytes),
                "event: ?[a-z_]{0,8}\n".prop_map(String::into_bytes),
                Just(b"event: e\r\ndata: {}\r\n\r\n".to_vec()),
                Just(b"event: e\ndata: {}\n\n".to_vec()),
                Just(b"event: e\n".to_vec()),
                Just(b"event: e\r\n".to_vec()),
                Just(b"event: e\r".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b": keep-alive\n".to_vec()),
                Just(b"id: 1\n".to_vec()),
                Just(b"data".to_vec()),
                Just(b"\xEF\xBB\xBF".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..4),
            ], 0..24),
            max in prop_oneof![Just(DEFAULT_MAX_LINE), 4usize..24],
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let body = lines.concat();
            let reference = reports(&bytewise(&body), max);
            prop_assert_eq!(&reports(&[&body], max), &reference);
            // In frames cut anywhere but inside a CRLF (see `bytewise`).
            let mut idx: Vec<usize> = cuts
                .iter()
                .map(|c| c % (body.len() + 1))
                .filter(|&i| !(i > 0 && i < body.len() && body[i - 1] == b'\r' && body[i] == b'\n'))
                .collect();
            idx.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for i in idx {
                chunks.push(&body[last..i]);
                last = i;
            }
            chunks.push(&body[last..]);
            prop_assert_eq!(&reports(&chunks, max), &reference);
        }
    }

    /// `body` a byte at a time, but a CRLF in one piece (a CRLF split across chunks reports its
    /// line's end after the `\r`).
    fn bytewise(body: &[u8]) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        let mut from = 0;
        for i in 1..=body.len() {
            if i == body.len() || !(body[i - 1] == b'\r' && body[i] == b'\n') {
                pieces.push(&body[from..i]);
                from = i;
            }
        }
        pieces
    }

    #[test]
    fn a_repeated_event_line_ends_where_it_did() {
        // The first line of a stream takes the long way: the second event is searched, the
        // third found by comparison.
        let body = b"event: e\r\ndata: 1\r\n\r\nevent: e\r\ndata: 2\r\n\r\n\
                     event: e\r\ndata: 3\r\n\r\nevent: e\ndata: 4\n\nevent: e\ndata: 5\n\n\
                     event: e\rdata: 6\r\revent: e\rdata: 7\r\r";
        let (whole, _) = reports(&[body], 64);
        assert_eq!(whole, reports(&bytewise(body), 64).0);
        let events: Vec<_> = whole
            .iter()
            .filter_map(|r| match r {
                Report::Event(name, data, ..) => Some((name.clone(), data.clone())),
                Report::Line(..) => None,
            })
            .collect();
        let want: Vec<_> = (1..=7)
            .map(|i| (b"e".to_vec(), i.to_string().into_bytes()))
            .collect();
        assert_eq!(events, want);
    }

    #[test]
    fn the_short_way_takes_the_common_events() {
        let body = b"data: {}\n\nevent: e\ndata: {\"a\":1}\n\n: c\ndata: x\n\ndata: y\r\n\r\n";
        let (whole, _) = reports(&[body], 64);
        assert_eq!(whole, reports(&bytewise(body), 64).0);
        use LineKind::*;
        assert_eq!(
            whole,
            vec![
                Report::Line(Field, 9),
                Report::Event(vec![], b"{}".to_vec(), true, 10),
                Report::Line(Blank, 10),
                Report::Line(Field, 19),
                Report::Line(Field, 33),
                Report::Event(b"e".to_vec(), br#"{"a":1}"#.to_vec(), true, 34),
                Report::Line(Blank, 34),
                Report::Line(Comment, 38),
                Report::Line(Field, 46),
                Report::Event(vec![], b"x".to_vec(), true, 47),
                Report::Line(Blank, 47),
                Report::Line(Field, 56),
                Report::Event(vec![], b"y".to_vec(), true, 58),
                Report::Line(Blank, 58),
            ]
        );
    }

    /// Every event as `(name, data)` bytes, and the overflow count.
    type Scanned = (Vec<(Vec<u8>, Vec<u8>)>, u64);

    fn scan_raw(chunks: &[&[u8]], max: usize) -> Scanned {
        let mut s = SseScanner::new(max);
        let mut out = Vec::new();
        let mut push = |e: &SseEvent<'_>, _| out.push((e.name.to_vec(), e.data.to_vec()));
        for c in chunks {
            s.feed(c, &mut push);
        }
        s.finish(&mut push);
        (out, s.overflowed())
    }
}
