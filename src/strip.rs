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
//! - `"usage":null` is removed only where it is a member of the top-level object of a `data:`
//!   line (with the comma that separated it), by [`NullUsage`], a byte-level pass that holds
//!   at most a few dozen bytes, so it works on lines that pass as they stream too. The same
//!   text inside a string or a nested object stays.
//!
//! The scanner ([`SseScanner`]) says where lines end and what they were; the strip follows the
//! bytes. This is the one place the layer changes response bytes, so it is the one place it
//! copies them; other streams are never copied.

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
    /// The bytes decided for the current frame.
    out: Vec<u8>,
    /// The open unit: the event being completed, or the line between events.
    held: Vec<u8>,
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
            out: Vec::new(),
            held: Vec::new(),
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
                    Fate::Held if self.held.len() < self.max => self.held.push(b'\n'),
                    Fate::Held => {
                        self.pass();
                        self.out.push(b'\n');
                    }
                    Fate::Out => self.out.push(b'\n'),
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
        Bytes::from(std::mem::take(&mut self.out))
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
        let dest = if self.passing {
            &mut self.out
        } else {
            &mut self.held
        };
        self.line.end_line(dest);
        if !self.drop_event {
            self.out.append(&mut self.held);
        }
        self.held.clear();
        Bytes::from(std::mem::take(&mut self.out))
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
                    self.out.extend_from_slice(BOM);
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
            self.line.filter(bytes, &mut self.out);
            return;
        }
        // The filter may let out what it holds with these bytes: count it in.
        let room = self
            .max
            .saturating_sub(self.held.len() + self.line.held.len());
        if bytes.len() <= room {
            self.line.filter(bytes, &mut self.held);
            return;
        }
        self.line.filter(&bytes[..room], &mut self.held);
        self.pass();
        self.line.filter(&bytes[room..], &mut self.out);
    }

    /// The open unit is over the cap: what it holds goes out, and the rest as it comes.
    fn pass(&mut self) {
        self.passing = true;
        self.out.append(&mut self.held);
    }

    /// A line of `frame` ended at `end`.
    fn line_end(&mut self, frame: &[u8], kind: LineKind, end: usize) {
        let start = self.pos.min(end);
        self.route(&frame[start..end]);
        self.pos = end;
        let dest = if self.passing {
            &mut self.out
        } else {
            &mut self.held
        };
        self.line.end_line(dest);
        let comment = match kind {
            LineKind::Skipped => self.line_start == Some(b':'),
            k => k == LineKind::Comment,
        };
        let mut fate = Fate::Out;
        match kind {
            LineKind::Blank => {
                if self.in_event && self.drop_event && !self.passing {
                    self.held.clear();
                    fate = Fate::Dropped;
                } else {
                    self.out.append(&mut self.held);
                }
                self.in_event = false;
                self.passing = false;
                self.drop_event = false;
            }
            _ if comment && !self.in_event => {
                self.out.append(&mut self.held);
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
    if memmem::find_iter(data, b"\"usage\"").all(|at| is_null_after(&data[at + 7..])) {
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
}

/// Where in its line the filter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Matching `data:` (this many bytes so far).
    Prefix(usize),
    /// After `data:` (and its optional space): waiting for the `{`.
    Value,
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
        }
    }

    /// Filters the next `bytes` of the line into `dest`.
    fn filter(&mut self, bytes: &[u8], dest: &mut Vec<u8>) {
        let mut rest = bytes;
        while let Some((&b, tail)) = rest.split_first() {
            match self.at {
                Place::Off => {
                    dest.extend_from_slice(rest);
                    return;
                }
                Place::Prefix(n) => {
                    dest.push(b);
                    self.at = self.prefix(n, b);
                }
                Place::Value => {
                    dest.push(b);
                    if b == b'{' {
                        self.at = Place::Object;
                        self.depth = 1;
                        self.first = true;
                    } else if !is_ws(b) {
                        self.at = Place::Off;
                    }
                }
                Place::Object if self.in_str && !self.escaped && self.step.is_none() => {
                    // Inside a string, with no candidate held, only `"` and `\\` change the
                    // state: the bytes before the next one go out as they are, in one copy
                    // (byte by byte this pass was a fifth of a stream's instructions).
                    let n = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                    if n > 0 {
                        dest.extend_from_slice(&rest[..n]);
                        rest = &rest[n..];
                        continue;
                    }
                    self.object(b, dest);
                }
                Place::Object => self.object(b, dest),
            }
            rest = tail;
        }
    }

    /// The next prefix state after byte `b`, `n` bytes matched.
    fn prefix(&mut self, n: usize, b: u8) -> Place {
        if n < DATA.len() {
            return if b == DATA[n] {
                Place::Prefix(n + 1)
            } else {
                Place::Off
            };
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
    fn end_line(&mut self, dest: &mut Vec<u8>) {
        dest.append(&mut self.held);
        *self = NullUsage {
            held: std::mem::take(&mut self.held),
            ..NullUsage::new()
        };
    }
}

#[cfg(test)]
mod tests;
