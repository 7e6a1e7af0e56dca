//! The bytes the events of one stream repeat before the first member that matters.
//!
//! The chunks of a stream open with the same members: OpenAI chat's `id`, `object`,
//! `created`, `model` and `"choices":[{"index":0,"delta":{`; Anthropic's
//! `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta",`; Gemini's
//! `{"candidates": [{"content": {"parts": [{`; Responses' `type` and a `sequence_number` that
//! grows by one each event. A [`Preamble`] remembers those bytes from the last event, up to and
//! including the quote of the first member whose effect depends on its value (text whose
//! characters count, a usage to decode), together with what the members before it did. When the
//! next event starts with the same bytes, only the rest is walked.
//!
//! Numbers and booleans that no tracker reads (`sequence_number`, `created`, `index`) are
//! remembered as holes that match any other number or boolean, so a counter does not break
//! the match. The result is exactly what walking the whole event gives: the members of the
//! preamble are decided by its bytes alone (see [`scan::walk`]), and the tracker's callback
//! never sees a number's value.

use super::scan::{self, Value};

/// What a member did to the tracker reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing.
    Quiet,
    /// Something that depends only on the member's key and the kind of its value (a flag set
    /// in the tracker's state `S`): the same in every event that repeats its bytes.
    Constant,
    /// Something that depends on the value (characters counted, a decode asked for): the
    /// preamble ends before this member. The callback must not change `S` for it.
    Varies,
}

/// See the module docs. `S` is the state the [`Effect::Constant`] members build.
#[derive(Debug, Default)]
pub(crate) struct Preamble<S> {
    /// The remembered bytes without the holes' values; empty when nothing is remembered.
    bytes: Vec<u8>,
    /// Where in `bytes` a number or boolean was left out, in order.
    holes: Vec<usize>,
    /// The state the preamble's members built.
    state: S,
    /// The holes of the event being walked, as ranges of it (kept for its allocation).
    scratch: Vec<(usize, usize)>,
    /// The last matching event's preamble as it was written, holes filled: most streams
    /// repeat their numbers too, and one comparison with it is cheaper than the holes'.
    last: Vec<u8>,
}

/// Whether `c` can be part of a number or a boolean as it is written in JSON.
fn scalar_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')
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

impl<S: Clone + Default> Preamble<S> {
    /// Calls `member(key, value, state)` for every member of `json`, as [`scan::visit`] does,
    /// skipping the remembered preamble when `json` starts with it, and remembers this event's
    /// preamble otherwise. Returns the state the [`Effect::Constant`] members built.
    pub(crate) fn visit<'a>(
        &mut self,
        json: &'a [u8],
        mut member: impl FnMut(&[u8], Value<'a>, &mut S) -> Effect,
    ) -> S {
        if let Some(resume) = self.resume_at(json) {
            let mut state = self.state.clone();
            scan::walk(json, resume, |m| {
                member(m.key, m.value, &mut state);
            });
            return state;
        }
        let mut state = S::default();
        let mut cut = None;
        let mut holes = std::mem::take(&mut self.scratch);
        holes.clear();
        scan::walk(json, 0, |m| {
            let effect = member(m.key, m.value, &mut state);
            if cut.is_some() {
                return;
            }
            if effect == Effect::Varies {
                cut = Some((m.key_at, state.clone()));
            } else if m.value == Value::Scalar {
                if let Some(end) = scalar_end(json, m.value_at) {
                    holes.push((m.value_at, end));
                }
            }
        });
        self.bytes.clear();
        self.holes.clear();
        if let Some((at, prefix_state)) = cut {
            let mut from = 0;
            for &(start, end) in &holes {
                self.bytes.extend_from_slice(&json[from..start]);
                self.holes.push(self.bytes.len());
                from = end;
            }
            self.bytes.extend_from_slice(&json[from..=at]);
            self.last.clear();
            self.last.extend_from_slice(&json[..=at]);
            self.state = prefix_state;
        }
        self.scratch = holes;
        state
    }

    /// Where the walk resumes in `json` (the quote of the first member that varies) when
    /// `json` starts with the remembered preamble.
    fn resume_at(&mut self, json: &[u8]) -> Option<usize> {
        if self.bytes.is_empty() {
            return None;
        }
        if json.starts_with(&self.last) {
            return Some(self.last.len() - 1);
        }
        let at = self.match_holes(json)?;
        self.last.clear();
        self.last.extend_from_slice(&json[..=at]);
        Some(at)
    }

    /// [`resume_at`](Self::resume_at) through the holes.
    fn match_holes(&self, json: &[u8]) -> Option<usize> {
        let mut at = 0; // in `json`
        let mut from = 0; // in `self.bytes`
        for &hole in &self.holes {
            let literal = &self.bytes[from..hole];
            if !json.get(at..)?.starts_with(literal) {
                return None;
            }
            at = scalar_end(json, at + literal.len())?;
            from = hole;
        }
        let literal = &self.bytes[from..];
        json.get(at..)?
            .starts_with(literal)
            .then(|| at + literal.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a tracker would take from an event: the constant members (the state) and the
    /// members that vary, with their string lengths.
    type Seen = (Vec<(Vec<u8>, u8)>, Vec<(Vec<u8>, Option<u64>)>);

    fn kind(v: Value<'_>) -> u8 {
        match v {
            Value::Str(_) => 0,
            Value::Object => 1,
            Value::Array => 2,
            Value::Null => 3,
            Value::Scalar => 4,
        }
    }

    /// `t` and `u` vary, `b` and `k` are constant, everything else is quiet.
    fn classify(
        key: &[u8],
        value: Value<'_>,
        state: &mut Vec<(Vec<u8>, u8)>,
        varied: &mut Vec<(Vec<u8>, Option<u64>)>,
    ) -> Effect {
        match key {
            b"t" | b"u" => {
                let chars = match value {
                    Value::Str(t) => Some(t.chars()),
                    _ => None,
                };
                varied.push((key.to_vec(), chars));
                Effect::Varies
            }
            b"b" | b"k" => {
                state.push((key.to_vec(), kind(value)));
                Effect::Constant
            }
            _ => Effect::Quiet,
        }
    }

    fn remembered(preamble: &mut Preamble<Vec<(Vec<u8>, u8)>>, json: &[u8]) -> Seen {
        let mut varied = Vec::new();
        let state = preamble.visit(json, |k, v, s| classify(k, v, s, &mut varied));
        (state, varied)
    }

    fn whole(json: &[u8]) -> Seen {
        let (mut state, mut varied) = (Vec::new(), Vec::new());
        scan::visit(json, |k, v| {
            classify(k, v, &mut state, &mut varied);
        });
        (state, varied)
    }

    #[test]
    fn a_counter_does_not_break_the_match_and_the_rest_is_walked() {
        let mut p = Preamble::default();
        for (i, text) in ["ab", "cde", "", "f\\u00e9"].iter().enumerate() {
            let event = format!(
                r#"{{"k":"x","seq":{},"b":[1],"t":"{text}","u":null}}"#,
                i * 7
            );
            let seen = remembered(&mut p, event.as_bytes());
            assert_eq!(seen, whole(event.as_bytes()), "{event}");
            assert_eq!(p.holes.len(), 1, "{event}");
        }
        assert_eq!(p.bytes, br#"{"k":"x","seq":,"b":[1],""#);
        // A hole matches numbers and booleans, never a string, null or an object.
        for other in [r#""7""#, "null", "{}", "[]"] {
            let event = format!(r#"{{"k":"x","seq":{other},"b":[1],"t":"z"}}"#);
            assert_eq!(p.resume_at(event.as_bytes()), None, "{event}");
            assert_eq!(
                remembered(&mut p, event.as_bytes()),
                whole(event.as_bytes())
            );
            let back = r#"{"k":"x","seq":1,"b":[1],"t":"zz"}"#;
            assert_eq!(remembered(&mut p, back.as_bytes()), whole(back.as_bytes()));
        }
        for other in ["true", "-1.5e3", "12"] {
            let event = format!(r#"{{"k":"x","seq":{other},"b":[1],"t":"z"}}"#);
            assert!(p.resume_at(event.as_bytes()).is_some(), "{event}");
        }
    }

    #[test]
    fn nothing_is_remembered_without_a_member_that_varies() {
        let mut p = Preamble::<Vec<(Vec<u8>, u8)>>::default();
        remembered(&mut p, br#"{"a":1,"t":"x"}"#);
        assert!(!p.bytes.is_empty());
        // The same opening: the rest is walked, the preamble kept.
        let seen = remembered(&mut p, br#"{"a":2,"b":2}"#);
        assert_eq!(seen.0, vec![(b"b".to_vec(), 4)]);
        assert!(!p.bytes.is_empty());
        // Another opening and nothing that varies: nothing to remember.
        remembered(&mut p, br#"{"z":1,"b":2}"#);
        assert!(p.bytes.is_empty());
    }

    /// Events that share their openings, as a stream's do: a template with bytes replaced.
    fn stream() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let template = prop_oneof![
            Just(br#"{"k":"c","n":12,"b":{"q":true},"t":"ab","u":{"x":1}}"#.to_vec()),
            Just(br#"{"id":"x","b":[{"k":0,"t":"\"h\u00e9\""}],"t":null}"#.to_vec()),
            Just(br#"{"a" : 1 , "b" : "s", "c":[ "t", "u" ], "t" : "z"}"#.to_vec()),
        ];
        let edit = (
            any::<prop::sample::Index>(),
            prop_oneof![
                Just(b'0'),
                Just(b'9'),
                Just(b'"'),
                Just(b'\\'),
                Just(b':'),
                Just(b'{'),
                Just(b'n'),
                Just(b' '),
                any::<u8>()
            ],
            0u8..4,
        );
        let event = (template, proptest::collection::vec(edit, 0..3)).prop_map(|(mut t, edits)| {
            for (at, byte, how) in edits {
                let i = at.index(t.len() + 1);
                match how {
                    0 if i < t.len() => t[i] = byte,
                    1 => t.insert(i, byte),
                    2 if i < t.len() => {
                        t.remove(i);
                    }
                    _ => {}
                }
            }
            t
        });
        proptest::collection::vec(event, 1..12)
    }

    proptest! {
        #[test]
        fn remembering_the_preamble_changes_nothing(events in stream()) {
            let mut p = Preamble::default();
            for event in &events {
                prop_assert_eq!(remembered(&mut p, event), whole(event));
            }
        }
    }
}
