use super::*;
use proptest::prelude::*;

impl Pattern {
    /// The remembered bytes without the holes' values.
    fn template(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut at = 0;
        for &(start, end) in &self.holes {
            bytes.extend_from_slice(&self.last[at..start]);
            at = end;
        }
        bytes.extend_from_slice(&self.last[at..]);
        bytes
    }

    /// [`Pattern::matches`] piece by piece: the bytes between the holes compared in turn,
    /// each hole taking the number or boolean the event has there; with whether each of those
    /// is a [`plain_count`].
    fn reference(&self, json: &[u8], whole: bool) -> Option<(usize, bool)> {
        if self.last.is_empty() {
            return None;
        }
        let (mut at, mut from) = (0, 0);
        let mut plain = true;
        for &(start, end) in &self.holes {
            let piece = &self.last[from..start];
            if !json.get(at..)?.starts_with(piece) {
                return None;
            }
            let value = at + piece.len();
            at = scalar_end(json, value)?;
            plain &= plain_count(&json[value..at]);
            from = end;
        }
        let piece = &self.last[from..];
        let len = json
            .get(at..)?
            .starts_with(piece)
            .then(|| at + piece.len())?;
        (!whole || len == json.len()).then_some((len, plain))
    }
}

/// What a tracker would take from an event: the constant members (the state) and the
/// members that vary, with their string lengths.
type Seen = (Vec<(Vec<u8>, u8)>, Vec<(Vec<u8>, Option<u64>)>);

/// The constant members in the order they came.
impl State for Vec<(Vec<u8>, u8)> {
    fn then(&mut self, later: &Self) {
        self.extend_from_slice(later);
    }
}

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
        assert_eq!(p.pre.holes.len(), 1, "{event}");
    }
    assert_eq!(p.pre.template(), br#"{"k":"x","seq":,"b":[1],""#);
    // A hole matches numbers and booleans, never a string, null or an object.
    for other in [r#""7""#, "null", "{}", "[]"] {
        let event = format!(r#"{{"k":"x","seq":{other},"b":[1],"t":"z"}}"#);
        assert_eq!(p.pre.matches(event.as_bytes(), false), None, "{event}");
        assert_eq!(
            remembered(&mut p, event.as_bytes()),
            whole(event.as_bytes())
        );
        let back = r#"{"k":"x","seq":1,"b":[1],"t":"zz"}"#;
        assert_eq!(remembered(&mut p, back.as_bytes()), whole(back.as_bytes()));
    }
    for other in ["true", "-1.5e3", "12"] {
        let event = format!(r#"{{"k":"x","seq":{other},"b":[1],"t":"z"}}"#);
        assert!(p.pre.matches(event.as_bytes(), false).is_some(), "{event}");
    }
}

#[test]
fn nothing_is_remembered_without_a_member_that_varies() {
    let mut p = Preamble::<Vec<(Vec<u8>, u8)>>::default();
    remembered(&mut p, br#"{"a":1,"t":"x"}"#);
    assert!(!p.pre.last.is_empty());
    // The same opening: the rest is walked, the preamble kept.
    let seen = remembered(&mut p, br#"{"a":2,"b":2}"#);
    assert_eq!(seen.0, vec![(b"b".to_vec(), 4)]);
    assert!(!p.pre.last.is_empty());
    // Another opening and nothing that varies: nothing to remember.
    remembered(&mut p, br#"{"z":1,"b":2}"#);
    assert!(p.pre.last.is_empty());
}

#[test]
fn a_quiet_postamble_is_skipped_with_what_its_members_did() {
    let mut p = Preamble::default();
    let event = |text: &str, count: u32| {
        format!(r#"{{"k":"x","c":[{{"t":"{text}"}}],"n":{{"q":{count},"b":true}},"m":"s"}}"#)
    };
    for (i, text) in ["ab", "", r#"c\"d"#, r"\u00e9"].iter().enumerate() {
        let e = event(text, i as u32 * 11);
        assert_eq!(remembered(&mut p, e.as_bytes()), whole(e.as_bytes()), "{e}");
    }
    assert_eq!(p.post.template(), br#"}],"n":{"q":,"b":},"m":"s"}"#);
    assert_eq!(p.post_state, vec![(b"b".to_vec(), 4)]);
    // Skipped: the members after the text are not called at all.
    let e = event("zz", 7);
    let mut calls = Vec::new();
    p.visit(e.as_bytes(), |k, _, _| {
        calls.push(k.to_vec());
        Effect::Quiet
    });
    assert_eq!(calls, vec![b"t".to_vec()]);
    // Another string after the text, or a member that varies: walked, and remembered
    // only when nothing in it varies.
    let other = r#"{"k":"x","c":[{"t":"a"}],"n":{"q":1,"b":true},"m":"S"}"#;
    assert_eq!(
        remembered(&mut p, other.as_bytes()),
        whole(other.as_bytes())
    );
    assert_eq!(p.post.template(), br#"}],"n":{"q":,"b":},"m":"S"}"#);
    let loud = r#"{"k":"x","c":[{"t":"a"}],"n":{"q":1,"b":true},"u":"s"}"#;
    assert_eq!(remembered(&mut p, loud.as_bytes()), whole(loud.as_bytes()));
    assert!(p.post.last.is_empty());
    // The text's member decides nothing about the rest: another key is walked the same way.
    let e = event("ab", 1).replace(r#""t""#, r#""r""#);
    assert_eq!(remembered(&mut p, e.as_bytes()), whole(e.as_bytes()));
}

#[test]
fn counts_of_the_same_lengths_are_compared_through_the_mask() {
    let event = |a: u32, b: u32| {
        format!(r#"{{"t": "x"}}],"u": {{"p": 120,"q": {a},"r": {b}}},"v": "gemini-x","w": "r1"}}"#)
    };
    let first = event(10, 130);
    let holes: Vec<_> = Members::new(first.as_bytes(), 0)
        .filter_map(|m| hole(first.as_bytes(), &m))
        .collect();
    let mut pattern = Pattern::default();
    pattern.remember(first.as_bytes(), 0, first.len(), &holes);
    assert_eq!(
        pattern.matches(first.as_bytes(), true),
        Some((first.len(), true))
    );
    assert!(pattern.mask.is_empty(), "the bytes repeat: no mask");
    // The first change goes through the holes and builds the mask.
    let e = event(11, 131);
    assert_eq!(pattern.matches(e.as_bytes(), true), Some((e.len(), true)));
    assert!(!pattern.mask.is_empty());
    // The next ones are decided by the mask alone.
    for (a, b) in [(12, 132), (99, 219), (10, 100)] {
        let e = event(a, b);
        assert_eq!(pattern.through_mask(e.as_bytes()), Some(true), "{e}");
        assert_eq!(pattern.matches(e.as_bytes(), true), Some((e.len(), true)));
    }
    // A leading zero matches but is no plain count; a fraction or a longer count is the
    // general comparison's.
    let e = event(10, 100).replace("100", "064");
    assert_eq!(pattern.through_mask(e.as_bytes()), Some(false), "{e}");
    assert_eq!(pattern.matches(e.as_bytes(), true), Some((e.len(), false)));
    let e = event(10, 100).replace("100", "1.5");
    assert_eq!(pattern.through_mask(e.as_bytes()), None, "{e}");
    assert_eq!(pattern.matches(e.as_bytes(), true), Some((e.len(), false)));
    // A longer count: matched through the holes, then its lengths are the remembered ones.
    let e = event(100, 230);
    assert_eq!(pattern.through_mask(e.as_bytes()), None);
    assert_eq!(pattern.matches(e.as_bytes(), true), Some((e.len(), true)));
    let e = event(101, 231);
    assert_eq!(pattern.through_mask(e.as_bytes()), Some(true), "{e}");
    // Another byte outside the holes: no match.
    let e = event(101, 231).replace("r1", "r2");
    assert_eq!(pattern.matches(e.as_bytes(), true), None);
}

/// Events that share their openings, as a stream's do: a template with bytes replaced.
fn stream() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let template = prop_oneof![
        Just(br#"{"k":"c","n":12,"b":{"q":true},"t":"ab","u":{"x":1}}"#.to_vec()),
        Just(br#"{"id":"x","b":[{"k":0,"t":"\"h\u00e9\""}],"t":null}"#.to_vec()),
        Just(br#"{"a" : 1 , "b" : "s", "c":[ "t", "u" ], "t" : "z"}"#.to_vec()),
        Just(br#"{"k":"c","n":12,"t":"ab","z":{"q":3,"b":true},"m":"s","k":[1,2]}"#.to_vec()),
        Just(
            br#"{"c": [{"p": [{"t": "x"}],"r": "m"},"i": 0}],"b": {"p": 1,"q": 20},"v": "g"}"#
                .to_vec()
        ),
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

/// Events of one shape whose numbers change (as Gemini's token counts do), into other
/// numbers, booleans, or what is no number, with a byte edited now and then.
fn counters() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let value = prop_oneof![
        "[0-9]{1,4}",
        "[1-9][0-9]{5,20}",
        "0[0-9]{1,3}",
        "[0-9]{1,3}[a-z.+-][0-9]?",
        Just("true".to_string()),
        Just("-1.5e3".to_string()),
        Just("null".to_string()),
        Just(r#""7""#.to_string()),
        Just(String::new()),
        Just("1 ".to_string()),
        Just("12}".to_string()),
    ];
    let event = (
        [value.clone(), value.clone(), value],
        proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        any::<prop::sample::Index>(),
    )
        .prop_map(|([a, b, c], edit, cut)| {
            let mut e = format!(
                r#"{{"c": [{{"t": "x"}},{{"i": {a}}}],"u": {{"p": {b},"q": {c}}},"v": "g"}}"#
            )
            .into_bytes();
            if let Some((at, byte)) = edit {
                let i = at.index(e.len());
                e[i] = byte;
            }
            // Now and then an event cut short.
            if cut.index(8) == 0 {
                e.truncate(cut.index(e.len() + 1));
            }
            e
        });
    proptest::collection::vec(event, 1..12)
}

/// Events of one shape whose counts keep their lengths (as Gemini's token counts mostly do),
/// now and then with a leading zero, a byte that is no digit, a count one digit longer or
/// shorter, or a byte edited anywhere: the events [`Pattern::through_mask`] decides, and the
/// ones next to them that it leaves to [`Pattern::through_holes`].
fn same_lengths() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let count = |digits: usize| {
        prop_oneof![
            12 => proptest::string::string_regex(&format!("[1-9][0-9]{{{}}}", digits - 1)).unwrap(),
            1 => proptest::string::string_regex(&format!("0[0-9]{{{}}}", digits - 1)).unwrap(),
            1 => proptest::string::string_regex(&format!("[0-9]{{{}}}[a-z.+-]", digits - 1)).unwrap(),
            1 => proptest::string::string_regex(&format!("[0-9]{{{}}}\"", digits - 1)).unwrap(),
            1 => proptest::string::string_regex(&format!("[1-9][0-9]{{{}}}", digits)).unwrap(),
            1 => proptest::string::string_regex(&format!("[1-9][0-9]{{0,{}}}", digits.saturating_sub(2))).unwrap(),
        ]
    };
    let edit = proptest::option::weighted(0.1, (any::<prop::sample::Index>(), any::<u8>()));
    let event = (count(1), count(3), count(5), count(2), edit).prop_map(|(a, b, c, d, edit)| {
        let mut e = format!(
            r#"{{"c": [{{"t": "x"}}],"i": {a}}}],"u": {{"p": {b},"q": {c},"s": [{d}]}},"v": "g"}}"#
        )
        .into_bytes();
        if let Some((at, byte)) = edit {
            let i = at.index(e.len());
            e[i] = byte;
        }
        e
    });
    proptest::collection::vec(event, 1..16)
}

/// Events of one shape whose text and counts change (a stream's deltas), the text plain or
/// not, and now and then an event with a byte edited: the events that take
/// [`Preamble::visit`]'s short way (preamble, head and postamble repeated) and the ones next to
/// them that do not. With `edited` false, every text is plain.
fn deltas(edited: bool) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let text = if edited {
        prop_oneof![
            "[a-z ]{0,12}",
            "[^\"\\\\]{0,6}",
            Just(r#"x\"q\"y"#.to_string())
        ]
        .boxed()
    } else {
        "[a-zé ]{0,20}".boxed()
    };
    // Three events in ten edited, when any are.
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..10);
    let event = (text, 0u32..1000, 0u32..1000, edit).prop_map(move |(text, n, m, edit)| {
        let mut e =
            format!(r#"{{"k":"c","n":{n},"b":{{"q":true}},"t":"{text}","z":{{"x":{m}}},"k":"v"}}"#)
                .into_bytes();
        if let (true, (at, byte, 0..3)) = (edited, edit) {
            let i = at.index(e.len());
            e[i] = byte;
        }
        e
    });
    proptest::collection::vec(event, 1..12)
}

proptest! {
    #[test]
    fn the_comparison_finds_what_matching_piece_by_piece_finds(
        events in prop_oneof![stream(), counters(), same_lengths()],
        cut in any::<prop::sample::Index>(),
        whole in any::<bool>(),
    ) {
        let first = &events[0];
        let to = cut.index(first.len() + 1);
        let holes: Vec<_> = Members::new(first, 0)
            .filter_map(|m| hole(first, &m))
            .filter(|&(_, end)| end <= to)
            .collect();
        let mut pattern = Pattern::default();
        pattern.remember(first, 0, to, &holes);
        let template = pattern.template();
        for event in &events {
            // The reference first: a match may take the event's counts as the remembered
            // ones, never other pieces between them.
            let want = pattern.reference(event, whole);
            let got = pattern.matches(event, whole);
            prop_assert_eq!(pattern.template(), template.clone());
            // The same match; plain counts claimed only where every hole holds one (a hole
            // remembered with another value may leave a plain event unclaimed).
            prop_assert!(
                got.map(|(len, _)| len) == want.map(|(len, _)| len)
                    && got.is_none_or(|(_, plain)| !plain || want.is_some_and(|(_, p)| p)),
                "{:?} vs {:?}: {:?} against {:?}", got, want, String::from_utf8_lossy(event),
                String::from_utf8_lossy(&pattern.last)
            );
        }
    }

    #[test]
    fn the_short_way_finds_what_the_walk_finds(
        events in prop_oneof![deltas(true), deltas(false)],
    ) {
        let mut p = Preamble::default();
        for event in &events {
            prop_assert_eq!(remembered(&mut p, event), whole(event));
        }
    }

    #[test]
    fn plain_deltas_take_the_short_way(events in deltas(false)) {
        let mut p = Preamble::default();
        for (i, event) in events.iter().enumerate() {
            prop_assert_eq!(remembered(&mut p, event), whole(event));
            // The first event is walked and remembered; every later one repeats it.
            prop_assert_eq!(p.shape().repeated, i > 0);
        }
    }

    #[test]
    fn remembering_the_preamble_changes_nothing(events in stream()) {
        let mut p = Preamble::default();
        for event in &events {
            prop_assert_eq!(remembered(&mut p, event), whole(event));
        }
    }
}

/// A chat stream's shapes: the role chunk, text chunks, the finish chunk and the usage chunk
/// share their opening members and part ways at different depths.
const CHAT: [&str; 4] = [
    r#"{"id":"c1","n":7,"b":[{"i":0,"k":{"r":"a","t":""},"z":null}],"u":null}"#,
    r#"{"id":"c1","n":7,"b":[{"i":0,"k":{"t":"hi"},"z":null}],"u":null}"#,
    r#"{"id":"c1","n":7,"b":[{"i":0,"k":{},"z":null,"u":"stop"}],"u":null}"#,
    r#"{"id":"c1","n":7,"b":[],"u":{"p":1,"k":2}}"#,
];

#[test]
fn a_walk_resumes_at_the_last_key_the_event_repeats() {
    // Where each event's walk starts, found in the event before it (the same bytes there):
    // the text chunk at the role's key (the byte after its quote differs), the finish chunk at
    // `k` (its object opens empty), the usage chunk at `b` (its array holds no object).
    let want = [
        None,
        Some(r#""r":"a""#),
        Some(r#""k":{"t""#),
        Some(r#""b":[{"#),
    ];
    let mut p = Preamble::default();
    for (i, event) in CHAT.iter().enumerate() {
        let event = event.as_bytes();
        let mut marks = p.marks.clone();
        let got = p.resume(event, &mut marks).map(|m| m.key_at);
        let want = want[i]
            .map(|key| memchr::memmem::find(CHAT[i - 1].as_bytes(), key.as_bytes()).expect("key"));
        assert_eq!(got, want, "event {i}");
        assert_eq!(remembered(&mut p, event), whole(event), "event {i}");
        assert!(!p.shape().repeated);
    }
}

/// Events of a chat stream's shapes, in any order, now and then with a byte edited: walks
/// resumed at every depth.
fn chat() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..6);
    let event = (prop::sample::select(CHAT.to_vec()), edit).prop_map(|(t, (at, byte, how))| {
        let mut e = t.as_bytes().to_vec();
        if how == 0 {
            let i = at.index(e.len());
            e[i] = byte;
        }
        e
    });
    proptest::collection::vec(event, 1..16)
}

proptest! {
    #[test]
    fn a_resumed_walk_finds_what_the_whole_walk_finds(events in chat()) {
        let mut p = Preamble::default();
        for event in &events {
            prop_assert_eq!(remembered(&mut p, event), whole(event));
        }
    }
}
