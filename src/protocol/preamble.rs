//! The bytes the events of one stream repeat before and after what changes.
//!
//! The chunks of a stream open with the same members: OpenAI chat's `id`, `object`,
//! `created`, `model` and `"choices":[{"index":0,"delta":{`; Anthropic's
//! `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta",`; Gemini's
//! `{"candidates": [{"content": {"parts": [{`; Responses' `type` and a `sequence_number` that
//! grows by one each event. A [`Preamble`] remembers those bytes from the last event, up to and
//! including the quote of the first member whose effect depends on its value (text whose
//! characters count, a usage to decode), together with what the members before it did. When the
//! next event starts with the same bytes, the walk resumes there.
//!
//! Most chunks close the same way too, after their text: chat's `},"finish_reason":null}]}`,
//! Gemini's role, index, cumulative usage, `modelVersion` and `responseId`. When the first
//! member after the preamble is a string, the bytes after it are the event's *postamble*; if
//! none of its members' effects depends on their values, it is remembered with what they did,
//! and an event that ends with the same bytes after its first string is not walked further.
//!
//! Numbers and booleans are remembered as holes that match any other number or boolean
//! (`sequence_number`, `created`, `index`, Gemini's growing token counts), so a counter does
//! not break the match: the tracker's callback never sees a number's value. The result is
//! exactly what walking the whole event gives: the members of remembered bytes are decided by
//! those bytes alone (see [`Members`]).

use super::scan::{self, Member, Members, Value};
use super::swar::{u64_of, u128_of};
use crate::buf::{Scratch, room, room_of};

/// What a member did to the tracker reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing.
    Quiet,
    /// Something that depends only on the member's key and the kind of its value (a flag set
    /// in the tracker's state `S`): the same in every event that repeats its bytes.
    Constant,
    /// Something that depends on the value (characters counted, a decode asked for): the
    /// preamble ends before this member, and no postamble holds it. The callback must not
    /// change `S` for it.
    Varies,
}

/// The state the [`Effect::Constant`] members of an event build.
pub(crate) trait State: Clone + Default {
    /// Adds what the members that came `later` in the same event did.
    fn then(&mut self, later: &Self);
}

impl State for () {
    fn then(&mut self, _later: &Self) {}
}

/// Bytes remembered from an event, with holes where its numbers and booleans were.
///
/// The bytes are kept as they were written, values and all, with the holes' ranges in them.
/// An event is compared with them sixteen bytes at a time, and only where it differs is the
/// difference looked at: inside a hole (a counter that moved), the event's own number is
/// skipped and the comparison resumes after the hole; anywhere else, no match. A stream whose
/// numbers repeat costs one comparison; one whose counters grow, one skip per changed number.
/// Which events match is exactly what matching the bytes between the holes piece by piece,
/// each hole a number or boolean of any length, gives ([`Pattern::reference`] in the tests).
#[derive(Debug, Default)]
struct Pattern {
    /// The bytes as written; empty when nothing is remembered.
    last: Vec<u8>,
    /// The ranges of `last` that are numbers or booleans, in order. Each ends before `last`
    /// does, so the byte after a hole always ends its value.
    holes: Vec<(usize, usize)>,
    /// An event matched with other values in the holes (a counter): the next events are
    /// compared through the holes at once. Until then, most streams repeat the bytes exactly,
    /// which `memcmp` confirms faster than the loop that looks for the differences.
    varying: bool,
    /// Every hole of `last` holds a [`plain_count`].
    plain: bool,
    /// Once the numbers vary and every hole holds a plain count: a byte per byte of `last`,
    /// [`HOLE`] in the holes, with [`LEAD`] too on the first byte of a hole of two or more
    /// digits (see [`Pattern::through_mask`]); empty otherwise.
    mask: Vec<u8>,
}

/// The bytes a pattern is given room for when it first remembers any, and the holes: a
/// stream remembers a preamble and a postamble several times (a chat stream's role chunk, its
/// first text chunk, its finish and usage chunks), and each longer than the last would grow
/// the vectors again.
const BYTES: usize = 256;
const HOLES: usize = 16;

/// [`Pattern::mask`]'s mark of a byte in a hole.
const HOLE: u8 = 0x80;
/// [`Pattern::mask`]'s mark of the first byte of a hole of two or more digits (where a `0`
/// makes the count no [`plain_count`]).
const LEAD: u8 = 0x01;

impl Pattern {
    fn clear(&mut self) {
        self.last.clear();
        self.holes.clear();
        self.mask.clear();
        self.varying = false;
    }

    /// Remembers `json[from..to]`; `holes` are the ranges of `json` in it that are numbers or
    /// booleans, in order. A hole that runs to `to` (an event cut inside its last number) leaves
    /// nothing remembered: the bytes after a hole must say where its value ends.
    fn remember(&mut self, json: &[u8], from: usize, to: usize, holes: &[(usize, usize)]) {
        self.clear();
        if holes.last().is_some_and(|&(_, end)| end >= to) {
            return;
        }
        room(&mut self.last, to - from, BYTES);
        room(&mut self.holes, holes.len(), HOLES);
        self.last.extend_from_slice(&json[from..to]);
        self.holes
            .extend(holes.iter().map(|&(start, end)| (start - from, end - from)));
        self.plain = holes
            .iter()
            .all(|&(start, end)| plain_count(&json[start..end]));
    }

    /// The length of the start of `json` that matches the remembered bytes; `whole` when all of
    /// `json` must. With it, whether every hole of `json` holds a [`plain_count`].
    #[inline(always)]
    fn matches(&mut self, json: &[u8], whole: bool) -> Option<(usize, bool)> {
        if !self.varying && !self.last.is_empty() {
            let exact = if whole {
                json == self.last.as_slice()
            } else {
                json.starts_with(&self.last)
            };
            if exact {
                return Some((self.last.len(), self.plain));
            }
        }
        self.matches_through_holes(json, whole)
    }

    /// [`matches`](Self::matches) when the bytes as last written do not repeat: out of line, so
    /// that the common case is a comparison at the call site.
    #[inline(never)]
    fn matches_through_holes(&mut self, json: &[u8], whole: bool) -> Option<(usize, bool)> {
        // Without holes only the exact comparison could match.
        if self.last.is_empty() || self.holes.is_empty() {
            return None;
        }
        if !self.mask.is_empty() && (!whole || json.len() == self.last.len()) {
            if let Some(plain) = self.through_mask(json) {
                return Some((self.last.len(), plain));
            }
        }
        let (len, plain) = self.through_holes(json)?;
        if whole && len != json.len() {
            return None;
        }
        self.varying = true;
        if plain {
            // The counts changed their lengths (or first varied): the next events are
            // compared with this one's bytes, the same pieces between other counts.
            self.rebase(&json[..len]);
        }
        Some((len, plain))
    }

    /// Takes `json`, which matched through the holes with a plain count in every one, as the
    /// remembered bytes: the same pieces between the holes, the holes where `json` has its
    /// counts. Builds the [`mask`](Self::mask) the next events are compared through.
    #[cold]
    fn rebase(&mut self, json: &[u8]) {
        // The holes move by what the counts before them grew or shrank.
        let mut shift = 0isize;
        for hole in &mut self.holes {
            let start = hole.0.saturating_add_signed(shift);
            let end = start
                + json[start..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
            shift += (end - start) as isize - (hole.1 - hole.0) as isize;
            *hole = (start, end);
        }
        self.last.clear();
        self.last.extend_from_slice(json);
        self.plain = true;
        self.mask.clear();
        self.mask.resize(self.last.len(), 0);
        for &(start, end) in &self.holes {
            self.mask[start..end].fill(HOLE);
            if end - start > 1 {
                self.mask[start] |= LEAD;
            }
        }
    }

    /// [`matches`](Self::matches) when `json` has the remembered bytes outside the holes at
    /// the same places (the counts kept their lengths) and digits in them, every remembered
    /// hole a plain count ([`mask`](Self::mask) built): whether every hole of `json` holds a
    /// plain count. One pass, thirty-two bytes a step; only sixteen that differ are looked at,
    /// each differing byte to be in a hole and a digit. `None` for any other event, which
    /// [`through_holes`](Self::through_holes) decides.
    ///
    /// Exact: outside the holes the bytes are the remembered ones, so each hole of `json` is
    /// bounded by the remembered bytes around it, which end a number; inside, every byte is a
    /// digit (the remembered ones are), so each holds a number of the remembered length (at
    /// most nineteen digits), plain unless it opens with a `0` where the remembered did not.
    #[inline]
    fn through_mask(&self, json: &[u8]) -> Option<bool> {
        let (last, mask) = (self.last.as_slice(), self.mask.as_slice());
        let n = last.len();
        let json = json.get(..n)?;
        if n < 16 || mask.len() != n {
            return None;
        }
        let mut zero = 0;
        let chunks = json
            .chunks_exact(32)
            .zip(last.chunks_exact(32))
            .zip(mask.chunks_exact(32));
        for ((x, y), m) in chunks {
            if array::<32>(x) != array::<32>(y) {
                zero |= differing(x, y, m)? | differing(&x[16..], &y[16..], &m[16..])?;
            }
        }
        // The last bytes: sixteen, then sixteen that overlap the ones compared.
        let at = n / 32 * 32;
        if n - at > 16 {
            zero |= differing(&json[at..], &last[at..], &mask[at..])?;
        }
        if n > at {
            let from = n - 16;
            zero |= differing(&json[from..], &last[from..], &mask[from..])?;
        }
        Some(zero == 0)
    }

    /// [`matches`](Self::matches) without `whole`: the end of the match in `json`, and whether
    /// its holes hold plain counts.
    fn through_holes(&self, json: &[u8]) -> Option<(usize, bool)> {
        let last = self.last.as_slice();
        let (mut at, mut from) = (0, 0); // in `json`, in `last`
        let mut holes = self.holes.iter();
        let mut plain = self.plain;
        loop {
            let same = common_prefix(json.get(at..)?, last.get(from..)?);
            at += same;
            from += same;
            if from == last.len() {
                return Some((at, plain));
            }
            // They differ at `from` (or `json` ended): in a hole, or no match. A hole that
            // ends before `from` held the same value in both.
            let &(start, end) = holes.by_ref().find(|&&(_, end)| end >= from)?;
            if start > from {
                return None;
            }
            // The event's value starts where the remembered one did.
            let value = at.checked_sub(from - start)?;
            let digits;
            (at, digits) = scalar_digits(json, value)?;
            // A count serde reads as a `u64`: one to nineteen digits, no leading zero.
            plain &= digits && at - value <= 19 && (json[value] != b'0' || at - value == 1);
            from = end;
        }
    }
}

/// The first `N` bytes of `bytes` (which holds at least `N`).
#[inline(always)]
fn array<const N: usize>(bytes: &[u8]) -> &[u8; N] {
    bytes[..N].try_into().expect("N bytes")
}

/// Whether the first sixteen bytes of `x` differ from those of `y` only in holes and there
/// with digits (`mask`: see [`Pattern::mask`]): then whether a differing hole's [`LEAD`] byte
/// is a `0` (not zero when one is); `None` when they differ anywhere else or with anything
/// else. Written byte by byte for the compiler to compare the sixteen at once (SSE2).
#[inline(always)]
fn differing(x: &[u8], y: &[u8], mask: &[u8]) -> Option<u128> {
    let (x, y, mask) = (array::<16>(x), array::<16>(y), array::<16>(mask));
    if x == y {
        return Some(0);
    }
    let mut bad = [0u8; 16];
    let mut zero = [0u8; 16];
    for i in 0..16 {
        let differs = x[i] != y[i];
        let digit = x[i].wrapping_sub(b'0') < 10;
        bad[i] = u8::from(differs & !((mask[i] & HOLE != 0) & digit));
        zero[i] = u8::from(differs & (x[i] == b'0') & (mask[i] & LEAD != 0));
    }
    (u128::from_le_bytes(bad) == 0).then_some(u128::from_le_bytes(zero))
}

/// How many bytes `a` and `b` have in common at their start, sixteen at a time.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut at = 0;
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        let diff = u128_of(x) ^ u128_of(y);
        if diff != 0 {
            return at + (diff.trailing_zeros() / 8) as usize;
        }
        at += 16;
    }
    // The last bytes: a word that overlaps the ones compared (all equal), when there are eight.
    if n >= 8 {
        for from in [at.min(n - 8), n - 8] {
            let diff = u64_of(&a[from..]) ^ u64_of(&b[from..]);
            if diff != 0 {
                return from + (diff.trailing_zeros() / 8) as usize;
            }
        }
        return n;
    }
    at + a[at..]
        .iter()
        .zip(&b[at..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Whether a number is written as serde reads any `u64` from it: one to nineteen digits, no
/// leading zero.
#[inline]
fn plain_count(value: &[u8]) -> bool {
    matches!(value.len(), 1..=19)
        && (value[0] != b'0' || value.len() == 1)
        && value.iter().all(u8::is_ascii_digit)
}

/// See the module docs. `S` is the state the [`Effect::Constant`] members build.
#[derive(Debug, Default)]
pub(crate) struct Preamble<S> {
    /// Up to and including the quote of the first member that varies.
    pre: Pattern,
    /// The state the preamble's members built.
    state: S,
    /// After the first string that follows the preamble, to the event's end.
    post: Pattern,
    /// The state the postamble's members built.
    post_state: S,
    /// The holes of the event being walked, as ranges of it (kept for its allocation).
    scratch: Vec<(usize, usize)>,
    /// The members of `pre`, from the walk that remembered it (see [`Mark`]); valid while
    /// `pre` holds that walk's bytes, not rebased onto another event's.
    marks: Vec<Mark<S>>,
    /// The first member after the preamble, when its value was a string: the bytes from the
    /// key's opening quote through the value's (`"content":"`), and the key's length. Most
    /// events name the same key there, so it is compared, not parsed.
    head: Vec<u8>,
    head_key: usize,
    /// What the last [`visit`](Preamble::visit) found.
    shape: Shape,
}

/// A member of a remembered preamble: where its key opens, and what the members before it
/// built (the state, and how many holes they left). An event that repeats the preamble's bytes
/// up to past that key's quote is walked from there (see [`Preamble::resume`]).
#[derive(Debug, Clone, Default)]
struct Mark<S> {
    key_at: usize,
    state: S,
    holes: usize,
}

/// What the last [`Preamble::visit`] found of the event's shape.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The event repeated the preamble, the head and the postamble: it was not walked past its
    /// first varying member.
    pub(crate) repeated: bool,
    /// When it `repeated`: every number or boolean in the remembered bytes is, in this event, a
    /// count serde reads as a `u64` (one to nineteen digits, no leading zero).
    pub(crate) plain: bool,
    /// Counts the visits that remembered or forgot anything: two events with the same
    /// generation, the later one `repeated`, have the same bytes outside their numbers and the
    /// string of their first varying member.
    pub(crate) generation: u64,
}

/// Whether `c` can be part of a number or a boolean as it is written in JSON.
#[inline]
fn scalar_byte(c: u8) -> bool {
    SCALAR[usize::from(c)]
}

/// [`scalar_byte`] as a table: the holes of every event are read byte by byte.
static SCALAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.');
        c += 1;
    }
    table
};

/// [`scalar_end`], and whether the value is all digits, in one pass.
#[inline]
fn scalar_digits(json: &[u8], at: usize) -> Option<(usize, bool)> {
    let first = *json.get(at)?;
    if first == b'n' || !scalar_byte(first) {
        return None;
    }
    let mut digits = true;
    let mut end = at;
    while let Some(&c) = json.get(end) {
        if !scalar_byte(c) {
            break;
        }
        digits &= c.is_ascii_digit();
        end += 1;
    }
    Some((end, digits))
}

/// The end of the number or boolean at `at`: the value's bytes, when it is one (a first byte
/// other than `n`, which would be `null`).
fn scalar_end(json: &[u8], at: usize) -> Option<usize> {
    let first = *json.get(at)?;
    if first == b'n' || !scalar_byte(first) {
        return None;
    }
    let len = json[at..].iter().take_while(|&&c| scalar_byte(c)).count();
    Some(at + len)
}

/// The hole a member's value leaves, if it is a number or a boolean.
fn hole(json: &[u8], m: &Member<'_>) -> Option<(usize, usize)> {
    if m.value != Value::Scalar {
        return None;
    }
    scalar_end(json, m.value_at).map(|end| (m.value_at, end))
}

/// A stream's preamble is scratch a thread keeps for its next stream (the chat tracker's).
impl<S: State + 'static> Scratch for Preamble<S> {
    /// Whether it has walked an event: the first walk gives its vectors their room.
    fn has_room(&self) -> bool {
        self.scratch.capacity() != 0
    }

    fn largest_room(&self) -> usize {
        [
            room_of(&self.pre.last),
            room_of(&self.pre.holes),
            room_of(&self.pre.mask),
            room_of(&self.post.last),
            room_of(&self.post.holes),
            room_of(&self.post.mask),
            room_of(&self.scratch),
            room_of(&self.marks),
            room_of(&self.head),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    fn reset(&mut self) {
        for pattern in [&mut self.pre, &mut self.post] {
            pattern.clear();
            pattern.plain = false;
        }
        self.state = S::default();
        self.post_state = S::default();
        self.scratch.clear();
        self.marks.clear();
        self.head.clear();
        self.head_key = 0;
        self.shape = Shape::default();
    }
}

impl<S: State> Preamble<S> {
    /// Remembers the head of `first`, the first member after the preamble, when its value is
    /// a string.
    fn remember_head(&mut self, json: &[u8], first: Option<&Member<'_>>) {
        self.head.clear();
        self.head_key = 0;
        if let Some(m) = first.filter(|m| matches!(m.value, Value::Str(_))) {
            self.head.extend_from_slice(&json[m.key_at..=m.value_at]);
            self.head_key = m.key.len();
        }
    }

    /// What the last [`visit`](Self::visit) found of its event's shape.
    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// Calls `member(key, value, state)` for every member of `json`, as a walk of the whole event does,
    /// skipping the remembered preamble and postamble when `json` repeats them, and remembering
    /// this event's otherwise. Returns the state the [`Effect::Constant`] members built.
    ///
    /// An event that repeats the preamble, the head and the postamble (most events of a
    /// stream) is handled here, in the caller, where `member` is one call that can be inlined;
    /// any other goes to [`walk`](Self::walk), which decides it again from the start.
    #[inline(always)]
    pub(crate) fn visit<'a>(
        &mut self,
        json: &'a [u8],
        mut member: impl FnMut(&[u8], Value<'a>, &mut S) -> Effect,
    ) -> S {
        // Compared once: a walk goes on from what the comparison found (a comparison that
        // finds nothing changes nothing, and one that matches is not repeated by the walk).
        let pre = self.pre.matches(json, false);
        if let Some(first) = pre.and_then(|(len, plain)| self.repeated(json, len, plain)) {
            let mut state = self.state.clone();
            member(first.key, first.value, &mut state);
            state.then(&self.post_state);
            return state;
        }
        self.walk(json, pre, member)
    }

    /// The first member after the preamble, when `json`, whose first `len` bytes matched the
    /// preamble (`pre_plain`: with plain counts), repeats the head and the postamble (then the
    /// shape says so): what [`walk`](Self::walk) finds before it calls `member` once and
    /// returns. `None` (and nothing changed) for any other event.
    #[inline(always)]
    fn repeated<'a>(&mut self, json: &'a [u8], len: usize, pre_plain: bool) -> Option<Member<'a>> {
        let first = scan::known_string_member(json, len - 1, &self.head, self.head_key)?;
        let (_, post_plain) = self.post.matches(json.get(first.next..)?, true)?;
        self.shape = Shape {
            repeated: true,
            plain: pre_plain && post_plain,
            generation: self.shape.generation,
        };
        Some(first)
    }

    /// Where a walk of `json`, which does not repeat the remembered preamble, may start
    /// instead of at its first byte: the key of the last member of the preamble that opens
    /// before the first byte where `json` differs from it. Returns that member's [`Mark`]
    /// (`marks` keeps those before it); `None` when there is none, or the marks do not
    /// describe the remembered bytes (they were rebased onto a later event's counts).
    ///
    /// Exact: [`Members`] decides each member (and [`hole`] each number's end) from bytes
    /// before the next key's quote, so a walk of `json` from its start finds the members the
    /// remembered walk found before that key, with the same values and holes, does with them
    /// what it did (the state of the mark), and reaches that quote as it did; from there on it
    /// is the walk [`Members`] resumes at a key's quote.
    fn resume(&self, json: &[u8], marks: &mut Vec<Mark<S>>) -> Option<Mark<S>> {
        if self.pre.varying || self.pre.last.is_empty() {
            return None;
        }
        let same = common_prefix(json, &self.pre.last);
        let k = marks.iter().rposition(|m| m.key_at < same)?;
        marks.truncate(k + 1);
        marks.pop()
    }

    /// [`visit`](Self::visit) by walking: every event that does not repeat the last one's
    /// preamble, head and postamble; `pre` is what comparing it with the preamble found.
    #[inline(never)]
    fn walk<'a>(
        &mut self,
        json: &'a [u8],
        pre: Option<(usize, bool)>,
        mut member: impl FnMut(&[u8], Value<'a>, &mut S) -> Effect,
    ) -> S {
        let generation = self.shape.generation;
        self.shape = Shape {
            repeated: false,
            plain: false,
            generation: generation + 1,
        };
        let (mut state, split, members) = match pre {
            Some((len, pre_plain)) => {
                let mut state = self.state.clone();
                let known = scan::known_string_member(json, len - 1, &self.head, self.head_key);
                let first = known.or_else(|| {
                    let first = scan::quick_string_member(json, len - 1)
                        .or_else(|| Members::new(json, len - 1).next());
                    self.remember_head(json, first.as_ref());
                    first
                });
                let known = known.is_some();
                let Some(first) = first else {
                    return state;
                };
                let members = Members::new(json, first.next);
                member(first.key, first.value, &mut state);
                let split = matches!(first.value, Value::Str(_)).then_some(first.next);
                if let Some(split) = split {
                    if let Some((_, post_plain)) = self.post.matches(&json[split..], true) {
                        // Nothing remembered or forgotten: the generation stands.
                        if known {
                            self.shape = Shape {
                                repeated: true,
                                plain: pre_plain && post_plain,
                                generation,
                            };
                        }
                        state.then(&self.post_state);
                        return state;
                    }
                }
                (state, split, members)
            }
            None => {
                let mut holes = std::mem::take(&mut self.scratch);
                holes.clear();
                room(&mut holes, 0, HOLES);
                let mut marks = std::mem::take(&mut self.marks);
                let (mut state, start) = match self.resume(json, &mut marks) {
                    Some(mark) => {
                        holes.extend_from_slice(&self.pre.holes[..mark.holes]);
                        (mark.state, mark.key_at)
                    }
                    None => {
                        marks.clear();
                        room(&mut marks, 0, HOLES);
                        (S::default(), 0)
                    }
                };
                let mut members = Members::new(json, start);
                let mut cut = None;
                for m in members.by_ref() {
                    marks.push(Mark {
                        key_at: m.key_at,
                        state: state.clone(),
                        holes: holes.len(),
                    });
                    if member(m.key, m.value, &mut state) == Effect::Varies {
                        cut = Some(m);
                        break;
                    }
                    holes.extend(hole(json, &m));
                }
                let Some(cut) = cut else {
                    self.pre.clear();
                    self.post.clear();
                    marks.clear();
                    self.marks = marks;
                    self.scratch = holes;
                    return state;
                };
                self.pre.remember(json, 0, cut.key_at + 1, &holes);
                self.marks = marks;
                self.remember_head(json, Some(&cut));
                self.scratch = holes;
                self.state = state.clone();
                let split = matches!(cut.value, Value::Str(_)).then_some(cut.next);
                (state, split, members)
            }
        };
        // The rest: what its members do is kept apart, to be remembered with its bytes.
        let mut holes = std::mem::take(&mut self.scratch);
        holes.clear();
        room(&mut holes, 0, HOLES);
        let mut post = S::default();
        let mut quiet = true;
        for m in members {
            if member(m.key, m.value, &mut post) == Effect::Varies {
                quiet = false;
            } else {
                holes.extend(hole(json, &m));
            }
        }
        state.then(&post);
        match split {
            Some(split) if quiet => {
                self.post.remember(json, split, json.len(), &holes);
                self.post_state = post;
            }
            _ => self.post.clear(),
        }
        self.scratch = holes;
        state
    }
}

#[cfg(test)]
mod tests;
