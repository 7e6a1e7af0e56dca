//! The `"usage":null` filter of a `data:` line ([`NullUsage`]).

use bytes::BytesMut;

use crate::protocol::swar::{byte_matches, u64_of};

/// Removes the member `"usage":null` from the top-level object of a `data:` line, with the
/// comma that separated it (`{"a":1,"usage":null}` → `{"a":1}`, `{"usage":null,"a":1}` →
/// `{"a":1}`), whitespace around its parts allowed. One pass over the bytes as they come,
/// across frames; it holds only a candidate member (at most [`NullUsage::MAX_CANDIDATE`]
/// bytes) until it knows whether it is one.
///
/// An object left open at the end of a line continues on the event's next `data:` line (SSE
/// joins them with a newline, whitespace to JSON), so a member is found on whichever data line
/// it sits, as long as the member and its comma share a line.
#[derive(Debug, Clone)]
pub(super) struct NullUsage {
    pub(super) at: Place,
    /// Inside the top-level object: nesting depth, in a string, after a backslash.
    pub(super) depth: u32,
    in_str: bool,
    escaped: bool,
    /// Right after the top-level `{`: the first member may be the one.
    pub(super) first: bool,
    /// The candidate so far, and how far it matched.
    pub(super) held: Vec<u8>,
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
pub(super) enum Place {
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

pub(super) const KEY: &[u8] = b"\"usage\"";
pub(super) const NULL: &[u8] = b"null";
pub(super) const DATA: &[u8] = b"data:";

enum Verdict {
    Hold,
    Confirm,
    Mismatch,
}

pub(super) fn is_ws(b: u8) -> bool {
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
/// one-word deltas): eight bytes at a time by word arithmetic finds their end before `memchr2`
/// would have set up; past a few words `memchr2` takes over.
pub(super) fn find_in_string(bytes: &[u8]) -> Option<usize> {
    find_by_words(bytes, specials, |rest| memchr::memchr2(b'"', b'\\', rest))
}

/// Where the next `:` is: as [`find_in_string`] (the members of a chunk are a few dozen bytes
/// apart).
pub(super) fn find_colon(bytes: &[u8]) -> Option<usize> {
    find_by_words(bytes, colons, |rest| memchr::memchr(b':', rest))
}

/// The first byte of `bytes` that `flags` marks, eight bytes at a time for the first few words,
/// then by `far` (a `memchr` over the rest). `flags(w)` sets the high bit of each byte of the
/// little-endian word `w` that matches, and may set one wrongly only above a byte that matched,
/// so the lowest is exact.
#[inline(always)]
fn find_by_words(
    bytes: &[u8],
    flags: impl Fn(u64) -> u64,
    far: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    const WORDS: usize = 4 * 8;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        if i == WORDS {
            return far(&bytes[i..]).map(|j| j + i);
        }
        let m = flags(u64_of(&bytes[i..]));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i == bytes.len() {
        return None;
    }
    if bytes.len() >= 8 {
        // The last word again, without the bytes already looked at.
        let back = i + 8 - bytes.len();
        let m = flags(u64_of(&bytes[bytes.len() - 8..])) >> (back * 8);
        return (m != 0).then(|| i + (m.trailing_zeros() / 8) as usize);
    }
    // Fewer than eight bytes: one at a time (a lone byte's flag is exact).
    bytes.iter().position(|&b| flags(u64::from(b)) != 0)
}

/// The flags of [`find_by_words`] for `"` and `\\`.
fn specials(w: u64) -> u64 {
    byte_matches(w, b'"') | byte_matches(w, b'\\')
}

/// The flags of [`find_by_words`] for `:`.
fn colons(w: u64) -> u64 {
    byte_matches(w, b':')
}

/// How the filter reads a string's contents, and the one place it does
/// ([`NullUsage::walk`] and [`Repeat`](super::repeat::Repeat)'s holes both read them here):
/// `Ok` with where the first quote that no backslash escapes is in `bytes`, or `Err` with
/// whether `bytes` end right after an escaping backslash (the next byte is taken whatever it
/// is). `escaped`: the first byte of `bytes` is escaped.
pub(super) fn string_end(bytes: &[u8], escaped: bool) -> Result<usize, bool> {
    let mut i = usize::from(escaped);
    loop {
        let Some(j) = bytes.get(i..).and_then(find_in_string) else {
            // Past the end when the last byte was a backslash: the next one is escaped.
            return Err(i > bytes.len());
        };
        let at = i + j;
        if bytes[at] == b'"' {
            return Ok(at);
        }
        i = at + 2;
    }
}

/// The member removed, with the comma before it, as chunks spell it.
const MEMBER: &[u8] = b",\"usage\":null";

/// What stopped [`NullUsage::walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The end of the bytes, or of the object.
    End,
    /// A top-level comma that may open the member, to be matched byte by byte.
    Candidate,
    /// A top-level [`MEMBER`] followed by `}` or `,`: the member, to remove.
    Member,
}

impl NullUsage {
    /// The longest candidate held before it is given up (whitespace beyond it is unusual).
    pub(super) const MAX_CANDIDATE: usize = 64;

    pub(super) fn new() -> Self {
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
    /// table lookup a byte, or [`string_end`] inside strings) and everything up to the next
    /// comma that may open the member; what it walked is copied to `dest` in one run. The
    /// member as chunks spell it ([`MEMBER`], then `}` or `,`) is removed whole when it lies
    /// in `bytes`; only another candidate member, the bytes right after the object's `{` (but
    /// for the quote of a first key that is not `"u…`) and the line's prefix go byte by byte.
    /// The state it ends in is the same as byte by byte, so a line cut anywhere filters the
    /// same.
    pub(super) fn filter(&mut self, bytes: &[u8], dest: &mut BytesMut) {
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
                Place::Object
                    if self.first
                        && self.step.is_none()
                        && bytes[i] == b'"'
                        && bytes.get(i + 1).is_some_and(|&b| b != KEY[1]) =>
                {
                    // The first key, not `"u…`: byte by byte, its quote would start a
                    // candidate that fails on the next byte, inside the key's string.
                    self.first = false;
                    self.in_str = true;
                    i += 1;
                }
                Place::Object if self.step.is_some() || self.first => {
                    dest.extend_from_slice(&bytes[run..i]);
                    self.object(bytes[i], dest);
                    i += 1;
                    run = i;
                }
                Place::Object => {
                    let (next, stop) = self.walk(bytes, i);
                    i = next;
                    match stop {
                        Stop::End => {}
                        Stop::Candidate => {
                            // A comma of the top-level object that may open the member: the
                            // candidate starts, held instead of copied.
                            dest.extend_from_slice(&bytes[run..i]);
                            self.held.push(b',');
                            self.step = Some((Step::Lead, false));
                            i += 1;
                            run = i;
                        }
                        Stop::Member => {
                            // Byte by byte the candidate would be confirmed by the `}` or `,`
                            // after it, which is then read as any other.
                            dest.extend_from_slice(&bytes[run..i]);
                            i += MEMBER.len();
                            run = i;
                        }
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
    /// [`Stop::Member`] when [`MEMBER`] and a `}` or `,` follow in `bytes`, else
    /// [`Stop::Candidate`], without taking it.
    ///
    /// The state stays in locals for the walk: [`filter`](Self::filter)'s `match` runs once
    /// per walk, not once per string or bracket.
    fn walk(&mut self, bytes: &[u8], mut i: usize) -> (usize, Stop) {
        let (mut depth, mut in_str, mut escaped) = (self.depth, self.in_str, self.escaped);
        let mut stop = Stop::End;
        while i < bytes.len() {
            if in_str {
                match string_end(&bytes[i..], escaped) {
                    Ok(j) => {
                        in_str = false;
                        escaped = false;
                        i += j + 1;
                        continue;
                    }
                    Err(e) => {
                        escaped = e;
                        i = bytes.len();
                        break;
                    }
                }
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
                    let rest = &bytes[i..];
                    stop = if rest.starts_with(MEMBER)
                        && matches!(rest.get(MEMBER.len()), Some(b'}' | b','))
                    {
                        Stop::Member
                    } else {
                        Stop::Candidate
                    };
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        (self.depth, self.in_str, self.escaped) = (depth, in_str, escaped);
        (i, stop)
    }

    /// The next prefix state after byte `b`, `n` bytes matched.
    pub(super) fn prefix(&mut self, n: usize, b: u8) -> Place {
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
    pub(super) fn object(&mut self, b: u8, dest: &mut BytesMut) {
        let top = self.depth == 1 && !self.in_str;
        if let Some((step, first)) = self.step {
            match self.advance(step, first, b) {
                Verdict::Hold => {
                    self.held.push(b);
                    self.track(b);
                    if self.held.len() > Self::MAX_CANDIDATE {
                        dest.extend_from_slice(&self.held);
                        self.held.clear();
                        self.step = None;
                    }
                    return;
                }
                Verdict::Confirm => self.held.clear(),
                Verdict::Mismatch => {
                    dest.extend_from_slice(&self.held);
                    self.held.clear();
                }
            }
            self.step = None;
        }
        let first = std::mem::take(&mut self.first);
        if top && b == b',' {
            self.step = Some((Step::Lead, false));
            self.held.push(b);
        } else if top && first && is_ws(b) {
            self.first = true;
            dest.extend_from_slice(&[b]);
        } else if top && first && b == b'"' {
            self.step = Some((Step::Key(1), true));
            self.held.push(b);
        } else {
            dest.extend_from_slice(&[b]);
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
    pub(super) fn end_line(&mut self, dest: &mut BytesMut) {
        if self.is_unread() {
            // Nothing read since the last reset: the state is the one it would reset to.
            return;
        }
        dest.extend_from_slice(&self.held);
        self.held.clear();
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
    pub(super) fn end_event(&mut self) {
        self.open = None;
    }

    /// Nothing of the current line seen yet, and no object left open by an earlier one: the
    /// state every line that [`Repeat`](super::repeat::Repeat) takes whole starts in.
    pub(super) fn is_fresh(&self) -> bool {
        self.is_unread() && self.open.is_none()
    }

    /// Nothing of the current line seen yet (an object left open by an earlier data line may
    /// be waiting).
    pub(super) fn is_unread(&self) -> bool {
        self.at == Place::Prefix(0) && self.held.is_empty() && self.step.is_none()
    }

    /// Inside a string (not right after a backslash) of the line's object, with nothing held
    /// or half matched: the bytes up to the string's closing quote go out as they are and
    /// leave this state as it is, so any such bytes may stand there. The state is then all in
    /// the [depth](Self::depth).
    ///
    /// Why, from the code: in this state [`filter`](Self::filter) takes its last arm (the
    /// object, nothing held, not first) and calls [`walk`](Self::walk), whose first step, in a
    /// string and not escaped, is [`string_end`]`(contents, false)`. The contents are the
    /// bytes before the first quote that the same function finds unescaped after them, so it
    /// finds no such quote in them and does not end after an escaping backslash (that
    /// backslash would escape the quote): `Err(false)`. The walk stops at the end with the
    /// state it started with (depth, in a string, not escaped), nothing is held, and `filter`
    /// copies the whole run. [`Repeat`](super::repeat::Repeat) cuts its holes with the same
    /// `string_end`, so the contents it copies instead of filtering are exactly these; the
    /// test `contents_of_a_plain_string_pass_unchanged` walks the filter over them to check.
    pub(super) fn in_plain_string(&self) -> bool {
        self.at == Place::Object
            && self.in_str
            && !self.escaped
            && self.step.is_none()
            && !self.first
            && self.held.is_empty()
    }

    /// How deep in the line's object the filter is.
    pub(super) fn depth(&self) -> u32 {
        self.depth
    }

    /// Puts a [fresh](Self::is_fresh) filter where [`in_plain_string`](Self::in_plain_string)
    /// held at `depth`: what filtering the line up to such a point would have left.
    pub(super) fn resume_in_string(&mut self, depth: u32) {
        self.at = Place::Object;
        self.depth = depth;
        self.in_str = true;
        self.escaped = false;
        self.first = false;
    }

    /// Past the end of the line's object, nothing held: the rest of the line goes out as it
    /// is.
    pub(super) fn is_done(&self) -> bool {
        self.at == Place::Off && self.step.is_none() && self.held.is_empty()
    }

    /// The line was filtered elsewhere to where [`is_done`](Self::is_done) holds: the state
    /// the filter itself would have reached.
    pub(super) fn done(&mut self) {
        self.at = Place::Off;
    }
}

#[cfg(test)]
pub(super) mod tests;
