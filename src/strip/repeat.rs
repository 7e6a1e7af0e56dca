//! The `data:` lines of one stream repeat their bytes but for the contents of a few strings.
//!
//! A chat stream's chunks differ from one another in the text of their delta (and, in some
//! API versions, a random `obfuscation` string); the `id`, `object`, `model`, the structure,
//! and where `"usage":null` stands repeat. [`Repeat`] learns a line's *pattern* once, by
//! filtering it in pieces with [`NullUsage`] and checking its state between them: the line's
//! bytes cut into *literals* and *holes*, where a hole is the contents of a string the filter
//! was inside of with nothing held (see [`NullUsage::in_plain_string`]). From that state any
//! string contents, up to the first quote not escaped, go out unchanged and leave the state as
//! it was. So a later line made of the same literals around any string contents filters to the
//! same literal outputs around the same contents: what the filter would give, without walking
//! the line's structure again. A line that does not fit is filtered in full and its pattern
//! learned instead.
//!
//! Most holes repeat too (`id`, `model`): after a line fits the learned pattern, the holes that
//! held the same contents in both lines are merged into the literals around them, and that
//! shorter pattern is tried first.
//!
//! A line that fits only the start of the pattern (the role chunk, the finish chunk and the
//! usage chunk share the `id`, `object`, `model` and `system_fingerprint` of the text chunks)
//! is filtered from after the last hole it fits, from the filter state that hole stood in,
//! and the pattern learned from there — unless lines have repeated a shape already (the
//! finish chunk after the text chunks): one such line is filtered without being learned, so the
//! shape that repeats is kept, and a second in a row is learned. A line whose data is not an
//! object (`[DONE]`) goes out as it is.
//!
//! A stream's patterns start with the room the last stream that ended on the same thread left
//! (cleared, see [`Repeat::new`]), not with ten new vectors.

use std::cell::Cell;

use bytes::BytesMut;

use super::null_usage::{self, DATA, KEY, NullUsage};
use super::{USAGE_KEY, is_null_after, may_be_usage};
use crate::buf::{Scratch, keep_spare, room, room_of, take_spare};

/// The most room a finished stream's vectors may hold to be kept for the next stream (see
/// [`Repeat::new`]); patterns learned from longer lines are freed with their stream.
const SPARE_ROOM: usize = 4 * LINE;

thread_local! {
    /// The cleared patterns of the last stream that ended on this thread, for the next one to
    /// start with: a stream's strip is new, and giving its ten vectors their room (then freeing
    /// them) cost more than a short stream's learning of a line. At most one per thread, of at
    /// most [`SPARE_ROOM`] per vector.
    static SPARE: Cell<Option<Repeat>> = const { Cell::new(None) };
}

/// How many holes a chunk's pattern is given room for at first (a chat chunk has about six).
const HOLES: usize = 16;

/// How many bytes of literals a stream's patterns are given room for at first: a chunk's line
/// and the longer usage chunk's (≈ 500 bytes with its details) fit without growing.
const LINE: usize = 1024;

/// The learned patterns of one stream.
#[derive(Debug, Default)]
pub(super) struct Repeat {
    /// Every hole of the line it was learned from.
    full: Pattern,
    /// [`full`](Self::full) with the holes that held the same contents in the last two lines
    /// that fit it merged into literals (empty until a line fits `full`).
    fast: Pattern,
    /// The holes' contents in the line `full` was learned from, one after another, and where
    /// each ends.
    learned: Vec<u8>,
    learned_ends: Vec<usize>,
    /// The holes of the line being matched, as ranges of it (kept for its allocation).
    holes: Vec<(usize, usize)>,
    /// The last line fitted no pattern whole and was filtered without being learned (see
    /// [`Repeat::filter_or_hold`]): the next such line is learned.
    missed: bool,
}

/// Literals with a hole between each two.
#[derive(Debug, Default)]
struct Pattern {
    /// The literals' bytes as the line has them, one after another.
    input: Vec<u8>,
    /// The literals' bytes as the filter lets them out, one after another.
    output: Vec<u8>,
    /// Where each literal ends in `input` and in `output`.
    ends: Vec<(usize, usize)>,
    /// The filter's depth in each hole (see [`NullUsage::in_plain_string`]); kept for `full`
    /// only.
    depths: Vec<u32>,
    /// Whether each `"usage"` in a literal is followed there by `: null` (see
    /// [`Pattern::proves_no_usage`]); found at the pattern's first fit.
    literals_null_usage: Option<bool>,
}

/// What [`Repeat::filter_or_hold`] did with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// Filtered; it has no `"usage"` but ones followed by `: null`.
    NoUsage,
    /// Filtered; it may have a `"usage"` that is not followed by `: null`.
    Unknown,
    /// Not filtered: it has a `"usage"` not followed by `: null`.
    Held,
}

/// How much of a line fits a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// All of it.
    Whole,
    /// The first `holes` literals and the holes after them (at least one), up to `at` in the
    /// line: the filter stood in a plain string at the depth of the last of them.
    Start { holes: usize, at: usize },
    /// Not even the first literal and hole.
    None,
}

impl Pattern {
    fn clear(&mut self) {
        self.input.clear();
        self.output.clear();
        self.ends.clear();
        self.depths.clear();
        self.literals_null_usage = None;
    }

    /// Keeps the first `literals` literals and the holes after them.
    fn truncate(&mut self, literals: usize) {
        match literals.checked_sub(1).and_then(|k| self.ends.get(k)) {
            Some(&(i, o)) => {
                self.input.truncate(i);
                self.output.truncate(o);
                self.ends.truncate(literals);
                self.depths.truncate(literals);
                self.literals_null_usage = None;
            }
            None => self.clear(),
        }
    }

    /// Ends the literal being built.
    fn cut(&mut self) {
        self.ends.push((self.input.len(), self.output.len()));
    }

    /// How much of `line` is this pattern's literals around string contents; the outputs of
    /// what fits and the contents are appended to `dest`, and `holes` says where the contents
    /// were.
    ///
    /// A literal the filter lets out unchanged (as long out as in: the filter only removes)
    /// is copied with the contents around it, from the line, in one run.
    fn fit(&self, line: &[u8], dest: &mut BytesMut, holes: &mut Vec<(usize, usize)>) -> Fit {
        let Some((&last, body)) = self.ends.split_last() else {
            return Fit::None;
        };
        holes.clear();
        // `line[run..at]` fitted and goes out as it is, not yet copied.
        let (mut at, mut i, mut o, mut run) = (0, 0, 0, 0);
        for &(i_end, o_end) in body {
            let literal = &self.input[i..i_end];
            let Some(end) = line
                .get(at..)
                .filter(|rest| rest.starts_with(literal))
                .and_then(|rest| string_end(&rest[literal.len()..]))
            else {
                dest.extend_from_slice(&line[run..at]);
                return self.start(holes.len(), at);
            };
            if o_end - o != i_end - i {
                dest.extend_from_slice(&line[run..at]);
                dest.extend_from_slice(&self.output[o..o_end]);
                run = at + literal.len();
            }
            at += literal.len();
            holes.push((at, at + end));
            at += end;
            (i, o) = (i_end, o_end);
        }
        if line.get(at..) != Some(&self.input[i..last.0]) {
            dest.extend_from_slice(&line[run..at]);
            return self.start(holes.len(), at);
        }
        if last.1 - o == last.0 - i {
            dest.extend_from_slice(&line[run..]);
        } else {
            dest.extend_from_slice(&line[run..at]);
            dest.extend_from_slice(&self.output[o..last.1]);
        }
        Fit::Whole
    }

    /// Whether `line`, which fitted this pattern [whole](Fit::Whole) with its contents at
    /// `holes`, has no `"usage"` but ones followed by `: null`, so that its event's data needs
    /// no parse to know it is not the usage-only chunk.
    ///
    /// A `"usage"` of the line lies in a literal (checked there once, the `null` too), or ends
    /// at the quote that closes a hole whose contents end in `usage`: string contents hold no
    /// quote that is not escaped, and a literal before a hole ends with the quote that opens it.
    fn proves_no_usage(&mut self, line: &[u8], holes: &[(usize, usize)]) -> bool {
        let literals = match self.literals_null_usage {
            Some(known) => known,
            None => {
                let known = self.literals_have_null_usage_only();
                self.literals_null_usage = Some(known);
                known
            }
        };
        literals
            && holes
                .iter()
                .all(|&(from, to)| !line[from..to].ends_with(&KEY[1..KEY.len() - 1]))
    }

    /// Whether each `"usage"` in a literal is followed there by `: null`: one search over the
    /// literals laid end to end, where a key that runs into the next literal counts as not
    /// followed by `null`.
    fn literals_have_null_usage_only(&self) -> bool {
        let mut ends = self.ends.iter().map(|&(i, _)| i);
        let mut end = 0;
        USAGE_KEY.find_iter(&self.input).all(|at| {
            while end <= at {
                match ends.next() {
                    Some(e) => end = e,
                    None => return false,
                }
            }
            at + KEY.len() <= end && is_null_after(&self.input[at + KEY.len()..end])
        })
    }

    fn start(&self, holes: usize, at: usize) -> Fit {
        if holes == 0 {
            Fit::None
        } else {
            Fit::Start { holes, at }
        }
    }
}

/// Whether the filter reads `line` as a `data:` line whose value is an object: `data:`, spaces
/// or tabs, `{` (see [`NullUsage::prefix`]); from any other line it removes nothing.
fn opens_object(line: &[u8]) -> bool {
    line.strip_prefix(DATA)
        .and_then(|value| value.iter().find(|&&b| !null_usage::is_ws(b)))
        == Some(&b'{')
}

/// Where the string whose contents start `bytes` ends: its first quote that no backslash
/// escapes, read as the filter reads strings (by the same function, see
/// [`NullUsage::in_plain_string`]).
fn string_end(bytes: &[u8]) -> Option<usize> {
    null_usage::string_end(bytes, false).ok()
}

/// A stream's patterns are scratch a thread keeps for its next stream.
impl Scratch for Repeat {
    /// Whether a line was learned.
    fn has_room(&self) -> bool {
        self.full.input.capacity() != 0
    }

    fn largest_room(&self) -> usize {
        [
            room_of(&self.full.input),
            room_of(&self.full.output),
            room_of(&self.fast.input),
            room_of(&self.fast.output),
            room_of(&self.learned),
            room_of(&self.full.ends),
            room_of(&self.fast.ends),
            room_of(&self.full.depths),
            room_of(&self.fast.depths),
            room_of(&self.learned_ends),
            room_of(&self.holes),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Forgets every pattern, keeping the vectors' room.
    fn reset(&mut self) {
        self.full.clear();
        self.fast.clear();
        self.learned.clear();
        self.learned_ends.clear();
        self.holes.clear();
        self.missed = false;
    }
}

impl Repeat {
    /// A stream's patterns, none learned yet: the spare a finished stream on this thread left
    /// ([`Repeat::finish`]), else new ones.
    pub(super) fn new() -> Self {
        take_spare(&SPARE).unwrap_or_default()
    }

    /// The stream ended: its vectors, cleared, are kept for the next stream on this thread
    /// when they are not larger than [`SPARE_ROOM`] (and this thread keeps none yet).
    pub(super) fn finish(&mut self) {
        keep_spare(&SPARE, self, SPARE_ROOM);
    }

    /// Filters `line`, a whole `data:` line with its terminator, into `dest` as `filter` would
    /// (followed by [`NullUsage::end_line`]); `filter` must be [fresh](NullUsage::is_fresh).
    ///
    /// Returns `true` when the line fitted a pattern that shows it has no `"usage"` but ones
    /// followed by `: null` (see [`Pattern::proves_no_usage`]); `false` says nothing.
    pub(super) fn filter_line(
        &mut self,
        filter: &mut NullUsage,
        line: &[u8],
        dest: &mut BytesMut,
    ) -> bool {
        self.filter_or_hold(filter, line, dest, false) == Line::NoUsage
    }

    /// [`filter_line`](Self::filter_line), unless `may_hold` and the line fits no pattern whole
    /// and has a `"usage"` not followed by `: null` (it may be the usage-only chunk's, which
    /// is dropped unfiltered): then nothing is written, nothing is learned, and the line is
    /// [held](Line::Held) for the caller to pass to `filter_line` if its event is kept.
    ///
    /// A line that fits no pattern whole is searched for such a `"usage"` only when
    /// `may_hold`; when it has none, it is learned and [`Line::NoUsage`].
    #[inline(always)]
    pub(super) fn filter_or_hold(
        &mut self,
        filter: &mut NullUsage,
        line: &[u8],
        dest: &mut BytesMut,
        may_hold: bool,
    ) -> Line {
        let start = dest.len();
        let proven = |p: bool| if p { Line::NoUsage } else { Line::Unknown };
        if !opens_object(line) {
            // The filter removes nothing from data that is not an object (`data: [DONE]`):
            // the line goes out as it is, and the filter ends where its walk would have (off,
            // nothing held; the line's end resets it either way). A line without a quote has
            // no `"usage"`.
            dest.extend_from_slice(line);
            filter.done();
            return proven(memchr::memchr(b'"', line).is_none());
        }
        if self.fast.fit(line, dest, &mut self.holes) == Fit::Whole {
            filter.done();
            self.missed = false;
            return proven(self.fast.proves_no_usage(line, &self.holes));
        }
        dest.truncate(start);
        let fit = self.full.fit(line, dest, &mut self.holes);
        if fit == Fit::Whole {
            filter.done();
            self.missed = false;
            let p = self.full.proves_no_usage(line, &self.holes);
            self.refine(line);
            return proven(p);
        }
        if may_hold && may_be_usage(line) {
            dest.truncate(start);
            return Line::Held;
        }
        // Once lines have repeated a shape (`fast` holds it), one line of another shape (a
        // chat stream's finish chunk) is filtered without being learned, so that the shape
        // that repeats is kept; a second such line in a row is learned (the stream's shape
        // changed).
        let learn = self.missed || self.fast.ends.is_empty();
        self.missed = !learn;
        let (holes, at) = match fit {
            Fit::Start { holes, at } => {
                filter.resume_in_string(self.full.depths[holes - 1]);
                (holes, at)
            }
            _ => {
                dest.truncate(start);
                (0, 0)
            }
        };
        if learn {
            self.learn(filter, line, holes, at, dest);
        } else {
            filter.filter(&line[at..], dest);
        }
        // Searched above when `may_hold`: no `"usage"` but ones followed by `null`.
        proven(may_hold)
    }

    /// `line` fitted `full`: the holes that held what they held in the line `full` was learned
    /// from become literal in `fast`.
    ///
    /// `fast`'s literals have no `"usage"` but ones followed by `null` when `full`'s have none
    /// and no merged contents end in `usage` (see [`Pattern::proves_no_usage`]): known here,
    /// not searched for again.
    fn refine(&mut self, line: &[u8]) {
        let full = &self.full;
        let fast = &mut self.fast;
        fast.clear();
        fast.input.reserve(full.input.len() + line.len());
        fast.output.reserve(full.output.len() + line.len());
        fast.ends.reserve(full.ends.len());
        let mut null_usage = full.literals_null_usage;
        let (mut i, mut o, mut l) = (0, 0, 0);
        for (k, &(i_end, o_end)) in full.ends.iter().enumerate() {
            fast.input.extend_from_slice(&full.input[i..i_end]);
            fast.output.extend_from_slice(&full.output[o..o_end]);
            (i, o) = (i_end, o_end);
            let Some(&(from, to)) = self.holes.get(k) else {
                break;
            };
            let l_end = self.learned_ends[k];
            let contents = &line[from..to];
            if contents == &self.learned[l..l_end] {
                fast.input.extend_from_slice(contents);
                fast.output.extend_from_slice(contents);
                if contents.ends_with(&KEY[1..KEY.len() - 1]) {
                    null_usage = Some(false);
                }
            } else {
                fast.cut();
            }
            l = l_end;
        }
        fast.cut();
        fast.literals_null_usage = null_usage;
    }

    /// Filters `line` from `at` on, in pieces, and learns its pattern: `line[..at]` fitted the
    /// first `holes` literals and holes of `full` (and `dest` has their output), and `filter`
    /// stands where they left it. Cuts are made before and after the contents of each string
    /// value written `":"` (where most of a chunk's strings are); those that the filter reads
    /// as a plain string become holes.
    fn learn(
        &mut self,
        filter: &mut NullUsage,
        line: &[u8],
        holes: usize,
        at: usize,
        dest: &mut BytesMut,
    ) {
        self.fast.clear();
        let full = &mut self.full;
        full.truncate(holes);
        self.learned.clear();
        self.learned_ends.clear();
        for &(from, to) in &self.holes[..holes] {
            self.learned.extend_from_slice(&line[from..to]);
            self.learned_ends.push(self.learned.len());
        }
        // Once per stream, room for a chunk's pattern, instead of growing each vector step by
        // step (a stream's strip is new, and its first lines are learned).
        let rest = line.len() - at;
        room(&mut full.input, rest, LINE);
        room(&mut full.output, rest, LINE);
        // The vectors of holes are given no `more`: a later line's learning (which keeps some
        // of them) would otherwise ask for `HOLES` more than they hold and grow them again,
        // four reallocations per short stream; past their first room they grow as `push` does.
        room(&mut full.ends, 0, HOLES);
        room(&mut full.depths, 0, HOLES);
        room(&mut self.learned, rest, LINE);
        room(&mut self.learned_ends, 0, HOLES);
        room(&mut self.holes, 0, HOLES);
        // `line[..done]` is filtered, `dest[out..]` is the output of the literal being built
        // (from `line[lit..]`).
        let (mut done, mut lit, mut out) = (at, at, dest.len());
        let mut search = at;
        while let Some(colon) = null_usage::find_colon(&line[search..]) {
            let colon = search + colon;
            search = colon + 1;
            if colon == 0 || line[colon - 1] != b'"' || line.get(colon + 1) != Some(&b'"') {
                continue;
            }
            let from = colon + 2;
            let Some(len) = string_end(&line[from..]) else {
                break;
            };
            let to = from + len;
            filter.filter(&line[done..from], dest);
            done = from;
            if !filter.in_plain_string() {
                continue;
            }
            let depth = filter.depth();
            let literal_out = dest.len();
            // In a plain string the filter lets the contents up to the closing quote out as
            // they are and stays where it was, because it reads them with the `string_end`
            // that delimited them (the proof is at `NullUsage::in_plain_string`), which the
            // pattern rests on: copied, not walked (walked too in debug builds).
            #[cfg(debug_assertions)]
            {
                let mut walked = filter.clone();
                let mut out = BytesMut::new();
                walked.filter(&line[from..to], &mut out);
                debug_assert!(
                    walked.in_plain_string()
                        && walked.depth() == depth
                        && out[..] == line[from..to]
                );
            }
            dest.extend_from_slice(&line[from..to]);
            done = to;
            full.input.extend_from_slice(&line[lit..from]);
            full.output.extend_from_slice(&dest[out..literal_out]);
            full.cut();
            full.depths.push(depth);
            self.learned.extend_from_slice(&line[from..to]);
            self.learned_ends.push(self.learned.len());
            (lit, out) = (to, dest.len());
            search = to;
        }
        filter.filter(&line[done..], dest);
        full.input.extend_from_slice(&line[lit..]);
        full.output.extend_from_slice(&dest[out..]);
        full.cut();
        if !filter.is_done() || self.learned_ends.is_empty() {
            full.clear();
        }
    }
}

#[cfg(test)]
mod tests;
