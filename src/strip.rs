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
//! copies them (once: into one buffer that keeps what is released and what is held, then into
//! the frame it returns); other streams are never copied.

use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::sse::{LineKind, SseEvent, SseScanner, Visit};

/// The state of a stripped stream.
#[derive(Debug)]
pub(crate) struct Strip {
    /// The most a held event (or line between events) may hold.
    max: usize,
    /// The bytes decided for the current frame (`..held_at`), then the open unit: the event
    /// being completed, or the line between events (`held_at..`). One buffer, so that
    /// releasing what is held moves an index, not bytes, and dropping it truncates.
    buf: Vec<u8>,
    /// Where the open unit starts in `buf`.
    held_at: usize,
    /// The open unit grew past `max`: its bytes go out as they come.
    passing: bool,
    /// A field line has been seen since the last blank line: an event is open.
    in_event: bool,
    /// The open event is the usage-only one (set by the dispatch before its blank line).
    drop_event: bool,
    /// The first byte of the current line, once seen.
    line_start: Option<u8>,
    /// Removes `"usage":null` from the current line.
    line: NullUsage,
    /// The last frame ended with a line's `\r`: where a `\n` opening the next frame goes.
    cr: Option<Fate>,
    /// Bytes of the current frame already routed.
    pos: usize,
    /// How many bytes of a BOM opened the stream so far (`None` once decided): a BOM belongs
    /// to no event, so it goes out on its own.
    bom: Option<usize>,
}

/// The buffer capacity a stream keeps between frames.
const KEEP: usize = 16 * 1024;

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
            buf: Vec::new(),
            held_at: 0,
            passing: false,
            in_event: false,
            drop_event: false,
            line_start: None,
            line: NullUsage::new(),
            cr: None,
            pos: 0,
            bom: Some(0),
        }
    }

    /// Scans `frame` with `scanner` (each event also goes to `on_event`) and returns the bytes
    /// to send for it.
    pub(crate) fn feed(
        &mut self,
        scanner: &mut SseScanner,
        frame: &[u8],
        on_event: &mut impl FnMut(&SseEvent<'_>),
    ) -> Bytes {
        self.pos = 0;
        if let Some(fate) = self.cr.take_if(|_| !frame.is_empty()) {
            if frame[0] == b'\n' {
                // The second byte of a CRLF whose `\r` ended the last frame: it follows the
                // line it ends.
                self.pos = 1;
                match fate {
                    Fate::Held if self.held_len() < self.max => self.buf.push(b'\n'),
                    Fate::Held => {
                        self.pass();
                        self.buf.push(b'\n');
                        self.release();
                    }
                    Fate::Out => {
                        self.buf.push(b'\n');
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
        on_event: &mut impl FnMut(&SseEvent<'_>),
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
        } else {
            self.release();
        }
        self.take_released()
    }

    /// How many bytes the open unit holds.
    fn held_len(&self) -> usize {
        self.buf.len() - self.held_at
    }

    /// What the open unit holds is decided: it goes out with the frame.
    fn release(&mut self) {
        self.held_at = self.buf.len();
    }

    /// The bytes decided for this frame, in one exact allocation; the buffer (and what it
    /// holds) stays for the next frame, so a stream allocates it once.
    fn take_released(&mut self) -> Bytes {
        let at = std::mem::take(&mut self.held_at);
        if at == 0 {
            return Bytes::new();
        }
        let released = Bytes::copy_from_slice(&self.buf[..at]);
        self.buf.drain(..at);
        // One large frame should not keep its buffer for the rest of a long stream.
        if self.buf.capacity() > KEEP && self.buf.len() <= KEEP {
            self.buf.shrink_to(KEEP);
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

    /// The open unit is over the cap: what it holds goes out, and the rest as it comes.
    fn pass(&mut self) {
        self.passing = true;
        self.release();
    }

    /// A line of `frame` ended at `end`.
    fn line_end(&mut self, frame: &[u8], kind: LineKind, end: usize) {
        let start = self.pos.min(end);
        self.route(&frame[start..end]);
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
                self.line.end_event();
                if self.in_event && self.drop_event && !self.passing {
                    self.buf.truncate(self.held_at);
                    fate = Fate::Dropped;
                } else {
                    self.release();
                }
                self.in_event = false;
                self.passing = false;
                self.drop_event = false;
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

/// The scanner's view, followed by the strip and passed on to the tracker.
struct Follow<'a, 'f, F> {
    strip: &'a mut Strip,
    frame: &'f [u8],
    on_event: &'a mut F,
}

impl<F: FnMut(&SseEvent<'_>)> Visit for Follow<'_, '_, F> {
    fn event(&mut self, event: &SseEvent<'_>, _end: usize) {
        (self.on_event)(event);
        self.strip.drop_event = !self.strip.passing && is_usage_only(event.data);
    }

    fn line_end(&mut self, kind: LineKind, end: usize) {
        self.strip.line_end(self.frame, kind, end);
    }
}

/// Finds `"usage"`; built once (a finder's set-up costs more than searching a chunk).
static USAGE_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));

/// A chunk with no choices and a usage object: the one the rewrite asked for.
fn is_usage_only(data: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
    }
    // Every other chunk of a rewritten stream carries `"usage":null`: only a usage that is
    // not null is worth parsing the chunk for.
    if USAGE_KEY
        .find_iter(data)
        .all(|at| is_null_after(&data[at + KEY.len()..]))
    {
        return false;
    }
    match serde_json::from_slice::<Chunk>(data) {
        Ok(c) => c.usage.is_some() && c.choices.is_some_and(|c| c.is_empty()),
        Err(_) => false,
    }
}

/// Whether `rest` (what follows a `"usage"` key) is `: null`, whitespace allowed.
fn is_null_after(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    rest.strip_prefix(b":")
        .is_some_and(|r| r.trim_ascii_start().starts_with(NULL))
}

/// Removes the member `"usage":null` from the top-level object of a `data:` line, with the
/// comma that separated it (`{"a":1,"usage":null}` → `{"a":1}`, `{"usage":null,"a":1}` →
/// `{"a":1}`), whitespace around its parts allowed. One pass over the bytes as they come,
/// across frames; it holds only a candidate member (at most [`NullUsage::MAX_CANDIDATE`]
/// bytes) until it knows whether it is one.
///
/// An object left open at the end of a line continues on the event's next `data:` line (SSE
/// joins them with a newline, whitespace to JSON), so a member is found on whichever data line
/// it sits, as long as the member and its comma share a line.
#[derive(Debug)]
struct NullUsage {
    at: Place,
    /// Inside the top-level object: nesting depth, in a string, after a backslash.
    depth: u32,
    in_str: bool,
    escaped: bool,
    /// Right after the top-level `{`: the first member may be the one.
    first: bool,
    /// The candidate so far, and how far it matched.
    held: Vec<u8>,
    step: Option<(Step, bool)>,
    /// The object the event's last data line left open, for its next data line.
    open: Option<Open>,
}

/// Where an object left open at the end of a data line stood.
#[derive(Debug, Clone, Copy)]
struct Open {
    depth: u32,
    in_str: bool,
    escaped: bool,
}

/// Where in its line the filter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Matching `data:` (this many bytes so far).
    Prefix(usize),
    /// After `data:` (and its optional space): waiting for the `{`.
    Value,
    /// After the `data:` of a line that continues an open object: a space here is the one SSE
    /// takes off the value, anything else is the object's.
    Resume,
    /// Inside the top-level object.
    Object,
    /// Not a JSON object line, or past its end: nothing more to remove.
    Off,
}

/// How far a candidate matched: before the key, in `"usage"`, before `:`, before `null`, in
/// `null`, after it, after the comma that follows a first member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Lead,
    Key(usize),
    Colon,
    Value,
    Null(usize),
    Tail,
    AfterComma,
}

const KEY: &[u8] = b"\"usage\"";
const NULL: &[u8] = b"null";
const DATA: &[u8] = b"data:";
const BOM: &[u8] = b"\xEF\xBB\xBF";

enum Verdict {
    Hold,
    Confirm,
    Mismatch,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// The bytes that change the filter's state outside a string.
static STRUCTURE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 6 {
        t[b"\"{}[],"[i] as usize] = true;
        i += 1;
    }
    t
};

/// Where the next `"` or `\\` of a string is. Most strings of a chunk are a few bytes (keys,
/// one-word deltas): a byte loop finds their end before `memchr2` would have set up.
fn find_in_string(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    let head = &bytes[..bytes.len().min(SHORT)];
    match head.iter().position(|&b| b == b'"' || b == b'\\') {
        Some(j) => Some(j),
        None if bytes.len() > SHORT => {
            memchr::memchr2(b'"', b'\\', &bytes[SHORT..]).map(|j| j + SHORT)
        }
        None => None,
    }
}

impl NullUsage {
    /// The longest candidate held before it is given up (whitespace beyond it is unusual).
    const MAX_CANDIDATE: usize = 64;

    fn new() -> Self {
        NullUsage {
            at: Place::Prefix(0),
            depth: 0,
            in_str: false,
            escaped: false,
            first: false,
            held: Vec::new(),
            step: None,
            open: None,
        }
    }

    /// Filters the next `bytes` of the line into `dest`.
    ///
    /// Only a few bytes can change the state: inside a string `"` and `\\`, outside one the
    /// structure (`"{}[],`). [`walk`](Self::walk) skips the bytes before the next of them (a
    /// table lookup a byte, or `memchr2` inside long strings) and everything up to the next
    /// comma that may open the member; what it walked is copied to `dest` in one run. Only a
    /// candidate member, the bytes right after the object's `{` and the line's prefix go byte
    /// by byte.
    /// The state it ends in is the same as byte by byte, so a line cut anywhere filters the
    /// same.
    fn filter(&mut self, bytes: &[u8], dest: &mut Vec<u8>) {
        // `bytes[run..i]` are decided unchanged and not yet copied.
        let mut run = 0;
        let mut i = 0;
        while i < bytes.len() {
            match self.at {
                Place::Off => break,
                Place::Prefix(n) => {
                    self.at = self.prefix(n, bytes[i]);
                    i += 1;
                }
                Place::Value => {
                    let b = bytes[i];
                    if b == b'{' {
                        self.at = Place::Object;
                        self.depth = 1;
                        self.first = true;
                    } else if !is_ws(b) {
                        self.at = Place::Off;
                    }
                    i += 1;
                }
                Place::Resume => {
                    self.at = Place::Object;
                    if bytes[i] == b' ' {
                        i += 1;
                    }
                }
                Place::Object if self.step.is_some() || self.first => {
                    dest.extend_from_slice(&bytes[run..i]);
                    self.object(bytes[i], dest);
                    i += 1;
                    run = i;
                }
                Place::Object => {
                    let (next, candidate) = self.walk(bytes, i);
                    i = next;
                    if candidate {
                        // A comma of the top-level object that may open the member: the
                        // candidate starts, held instead of copied.
                        dest.extend_from_slice(&bytes[run..i]);
                        self.held.push(b',');
                        self.step = Some((Step::Lead, false));
                        i += 1;
                        run = i;
                    }
                }
            }
        }
        dest.extend_from_slice(&bytes[run..]);
    }

    /// Follows the top-level object from `bytes[i]` over everything that cannot start a
    /// candidate: strings, nesting, and commas that open a key other than `"u…` (such a
    /// candidate would fail at its third byte, inside the string that key opens). Stops at
    /// the end of `bytes`, just past the object's closing brace (then [`Place::Off`]), or at a
    /// top-level comma that may open the member: then it returns that comma's index and
    /// `true`, without taking it.
    ///
    /// The state stays in locals for the walk: [`filter`](Self::filter)'s `match` runs once
    /// per walk, not once per string or bracket.
    fn walk(&mut self, bytes: &[u8], mut i: usize) -> (usize, bool) {
        let (mut depth, mut in_str, mut escaped) = (self.depth, self.in_str, self.escaped);
        let mut candidate = false;
        while i < bytes.len() {
            if in_str {
                if escaped {
                    escaped = false;
                    i += 1;
                    continue;
                }
                let Some(j) = find_in_string(&bytes[i..]) else {
                    i = bytes.len();
                    break;
                };
                i += j;
                if bytes[i] == b'"' {
                    in_str = false;
                } else {
                    escaped = true;
                }
                i += 1;
                continue;
            }
            let b = bytes[i];
            if !STRUCTURE[usize::from(b)] {
                i += 1;
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.at = Place::Off;
                        i += 1;
                        break;
                    }
                }
                _ if depth == 1
                    && bytes.get(i + 1) == Some(&b'"')
                    && bytes.get(i + 2).is_some_and(|&b| b != KEY[1]) =>
                {
                    in_str = true;
                    i += 1;
                }
                _ if depth == 1 => {
                    candidate = true;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        (self.depth, self.in_str, self.escaped) = (depth, in_str, escaped);
        (i, candidate)
    }

    /// The next prefix state after byte `b`, `n` bytes matched.
    fn prefix(&mut self, n: usize, b: u8) -> Place {
        if n < DATA.len() {
            if b != DATA[n] {
                return Place::Off;
            }
            if n + 1 == DATA.len() {
                if let Some(open) = self.open.take() {
                    self.depth = open.depth;
                    self.in_str = open.in_str;
                    self.escaped = open.escaped;
                    return Place::Resume;
                }
            }
            return Place::Prefix(n + 1);
        }
        // `data:` matched; `b` is the optional space or the value's first byte.
        if b == b' ' {
            return Place::Value;
        }
        // `b` is the value's first byte (it is already in `dest`).
        if b == b'{' {
            self.depth = 1;
            self.first = true;
            Place::Object
        } else if is_ws(b) {
            Place::Value
        } else {
            Place::Off
        }
    }

    /// One byte inside the top-level object.
    fn object(&mut self, b: u8, dest: &mut Vec<u8>) {
        let top = self.depth == 1 && !self.in_str;
        if let Some((step, first)) = self.step {
            match self.advance(step, first, b) {
                Verdict::Hold => {
                    self.held.push(b);
                    self.track(b);
                    if self.held.len() > Self::MAX_CANDIDATE {
                        dest.append(&mut self.held);
                        self.step = None;
                    }
                    return;
                }
                Verdict::Confirm => self.held.clear(),
                Verdict::Mismatch => dest.append(&mut self.held),
            }
            self.step = None;
        }
        let first = std::mem::take(&mut self.first);
        if top && b == b',' {
            self.step = Some((Step::Lead, false));
            self.held.push(b);
        } else if top && first && is_ws(b) {
            self.first = true;
            dest.push(b);
        } else if top && first && b == b'"' {
            self.step = Some((Step::Key(1), true));
            self.held.push(b);
        } else {
            dest.push(b);
        }
        self.track(b);
    }

    /// Matches byte `b` of a candidate at `step`; `first` when it is the object's first member.
    fn advance(&mut self, step: Step, first: bool, b: u8) -> Verdict {
        let next = match step {
            Step::Lead if is_ws(b) => Step::Lead,
            Step::Lead if b == b'"' => Step::Key(1),
            Step::Key(i) if b == KEY[i] => {
                if i + 1 == KEY.len() {
                    Step::Colon
                } else {
                    Step::Key(i + 1)
                }
            }
            Step::Colon if is_ws(b) => Step::Colon,
            Step::Colon if b == b':' => Step::Value,
            Step::Value if is_ws(b) => Step::Value,
            Step::Value if b == b'n' => Step::Null(1),
            Step::Null(i) if b == NULL[i] => {
                if i + 1 == NULL.len() {
                    Step::Tail
                } else {
                    Step::Null(i + 1)
                }
            }
            Step::Tail if is_ws(b) => Step::Tail,
            Step::Tail if b == b'}' => return Verdict::Confirm,
            Step::Tail if b == b',' && !first => return Verdict::Confirm,
            Step::Tail if b == b',' => Step::AfterComma,
            Step::AfterComma if is_ws(b) => Step::AfterComma,
            Step::AfterComma => return Verdict::Confirm,
            _ => return Verdict::Mismatch,
        };
        self.step = Some((next, first));
        Verdict::Hold
    }

    /// Follows strings and nesting.
    fn track(&mut self, b: u8) {
        if self.in_str {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_str = false;
            }
            return;
        }
        match b {
            b'"' => self.in_str = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.at = Place::Off;
                }
            }
            _ => {}
        }
    }

    /// The line ended: an unfinished candidate was not the member; start over.
    ///
    /// An object still open waits for the event's next data line (other lines between leave
    /// it waiting); [`end_event`](Self::end_event) forgets it.
    fn end_line(&mut self, dest: &mut Vec<u8>) {
        dest.append(&mut self.held);
        let open = match self.at {
            Place::Object => Some(Open {
                depth: self.depth,
                in_str: self.in_str,
                escaped: self.escaped,
            }),
            _ => self.open,
        };
        *self = NullUsage {
            held: std::mem::take(&mut self.held),
            open,
            ..NullUsage::new()
        };
    }

    /// The event ended: no later line continues its data.
    fn end_event(&mut self) {
        self.open = None;
    }
}

#[cfg(test)]
mod tests;
