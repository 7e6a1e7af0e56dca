use super::null_usage::tests::null_usage;
use super::null_usage::*;
use super::*;
use proptest::prelude::*;

mod usage_only;

/// Feeds `frames` through a scanner and a strip as the reader does; returns what each frame
/// released and the tail released at the end, checking the hold bounds after every frame.
/// Every other frame released is kept alive to the end, as a slow client's are: the buffer
/// they were split from is then shared, and the others' room is reclaimed.
fn strip_frames(frames: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut scanner = SseScanner::new(max);
    let mut strip = Strip::new(max);
    let mut out = Vec::new();
    let mut alive = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let released = strip.feed(&mut scanner, frame, &mut |_| None);
        out.push(released.to_vec());
        if i % 2 == 0 {
            alive.push(released);
        }
        assert!(
            strip.held_len() <= max,
            "held {} > cap {max}",
            strip.held_len()
        );
        assert!(strip.line.held.len() <= NullUsage::MAX_CANDIDATE + 1);
    }
    let tail = strip.finish(&mut scanner, &mut |_| None).to_vec();
    for (released, sent) in alive.iter().zip(out.iter().step_by(2)) {
        assert_eq!(
            &released[..],
            &sent[..],
            "a frame kept alive was overwritten"
        );
    }
    (out, tail)
}

fn strip_all(frames: &[&[u8]], max: usize) -> String {
    let (out, tail) = strip_frames(frames, max);
    String::from_utf8(out.concat().into_iter().chain(tail).collect()).unwrap()
}

#[test]
fn a_large_frame_does_not_keep_its_buffer() {
    let mut scanner = SseScanner::new(1 << 20);
    let mut strip = Strip::new(1 << 20);
    // A comment line held over three frames: the buffer grows by doubling, to room for
    // ≈ 120,000 bytes, and the line goes out whole with the third.
    let part = "x".repeat(30_000);
    let mut sent = Vec::new();
    for piece in [format!(":{part}"), part.clone(), format!("{part}\n")] {
        sent.push(strip.feed(&mut scanner, piece.as_bytes(), &mut |_| None));
    }
    let first = sent.pop().unwrap();
    assert_eq!(first.len(), 90_002);
    let next = strip.feed(
        &mut scanner,
        b"data: {\"a\":1,\"usage\":null}\n\n",
        &mut |_| None,
    );
    assert_eq!(&next[..], b"data: {\"a\":1}\n\n");
    // The next frame is not split from the large allocation's spare room (which would keep
    // it for the rest of the stream); the large frame alone keeps it, while it is held.
    let spare = first.as_ptr() as usize..first.as_ptr() as usize + first.len() + 20_000;
    assert!(!spare.contains(&(next.as_ptr() as usize)));
    assert!(strip.buf.capacity() <= KEEP, "{}", strip.buf.capacity());
}

/// Lines of a few shapes, `{0}` and `{1}` to fill with string contents: chunks with
/// `"usage":null`, usage-only chunks (the key plain, spaced or escaped), and `"usage"` nested
/// or in a string.
const EVENT_SHAPES: [&str; 7] = [
    "data: {\"id\":\"{0}\",\"choices\":[{\"delta\":{\"content\":\"{1}\"}}],\"usage\":null}\n",
    "data: {\"id\":\"{0}\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"x\":\"{1}\"}}\n",
    "data: {\"id\":\"{0}\",\"choices\":[],\"\\u0075sage\":{\"t\":\"{1}\"}}\n",
    "data: {\"id\":\"{0}\",\"choices\":[],\"usage\":null,\"u\":\"{1}\"}\n",
    "data: {\"usage\":null,\"id\":\"{0}\",\"choices\":[],\"m\":\"{1}\"}\n",
    "data: {\"id\":\"{0}\",\"choices\":[],\"u\":{\"usage\":null,\"v\":\"{1}\"}}\n",
    "data: {\"id\":\"{0}\",\"choices\":[] , \"usage\" : {\"t\":\"{1}\"}}\n",
];

/// String contents that may end in `usage` (so that a quote closing them makes a `"usage"`
/// key's text), or break the string early.
fn usage_contents() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "usage",
            "\\\"usage",
            "\\\"usage\\\":{",
            "\\\"usage\\\":null",
            "\\\\",
            "\"",
            ":",
            "{",
            " ",
        ]),
        0..4,
    )
    .prop_map(|t| t.concat())
}

#[test]
fn a_line_that_fits_a_pattern_is_still_dropped_when_it_is_usage_only() {
    // The pattern's literals have no plain `"usage"`; the third line's hole ends in `usage`,
    // which with the quote after it is the text `"usage"` followed by no `null`: its data is
    // parsed, and the escaped key makes it the usage-only chunk.
    let lines = [
        "data: {\"m\":\"a\",\"choices\":[],\"\\u0075sage\":{\"t\":1}}\n",
        "data: {\"m\":\"b\",\"choices\":[],\"\\u0075sage\":{\"t\":1}}\n",
        "data: {\"m\":\"usage\",\"choices\":[],\"\\u0075sage\":{\"t\":1}}\n",
        "data: {\"m\":\"c\",\"choices\":[],\"\\u0075sage\":{\"t\":1}}\n",
    ];
    let events: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
    let frames: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
    assert_eq!(
        strip_all(&frames, 1024),
        format!("{}{}{}", events[0], events[1], events[3])
    );
    // Usage-only chunks that fit each other's pattern all go: a literal with a usage that is
    // not null proves nothing.
    let usage = |t: &str| format!("data: {{\"choices\":[],\"usage\":{{\"x\":\"{t}\"}}}}\n\n");
    let events = [
        usage("a"),
        usage("b"),
        usage("c"),
        "data: [DONE]\n\n".into(),
    ];
    let frames: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
    assert_eq!(strip_all(&frames, 1024), "data: [DONE]\n\n");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Events of one data line each, sharing shapes and most contents so that they fit each
    /// other's patterns: each is dropped exactly when its data is the usage-only chunk, and
    /// what is kept is what the filter's walk gives.
    #[test]
    fn an_event_is_dropped_exactly_when_its_data_is_usage_only(
        shapes in prop::collection::vec(prop::sample::select(EVENT_SHAPES.to_vec()), 1..3),
        firsts in prop::collection::vec(prop_oneof![Just("c1".to_string()), usage_contents()], 1..3),
        seconds in prop::collection::vec(usage_contents(), 1..4),
        picks in prop::collection::vec(any::<(prop::sample::Index, prop::sample::Index, prop::sample::Index)>(), 1..16),
    ) {
        let mut events = Vec::new();
        let mut want = Vec::new();
        for (shape, first, second) in &picks {
            let line = shape
                .get(&shapes)
                .replace("{0}", first.get::<String>(&firsts).as_str())
                .replace("{1}", second.get::<String>(&seconds).as_str());
            let data = &line.as_bytes()[6..line.len() - 1];
            if !is_usage_only(data) {
                want.extend_from_slice(null_usage(&line).as_bytes());
                want.push(b'\n');
            }
            events.push(format!("{line}\n"));
        }
        let frames: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
        prop_assert_eq!(strip_all(&frames, 1024), String::from_utf8(want).unwrap());
    }
}

#[test]
fn a_bom_opening_the_stream_is_kept_even_when_the_first_event_goes() {
    let body = "\u{feff}data: {\"choices\":[],\"usage\":{}}\n\ndata: {\"usage\":null,\"a\":1}\n\n";
    for size in 1..body.len() {
        let frames: Vec<&[u8]> = body.as_bytes().chunks(size).collect();
        assert_eq!(
            strip_all(&frames, 1024),
            "\u{feff}data: {\"a\":1}\n\n",
            "{size}"
        );
    }
    // Bytes that only start like a BOM belong to their line.
    let (out, tail) = strip_frames(&[b"\xEF", b"\xBBx\n\n"], 1024);
    assert_eq!((out.concat(), tail), (b"\xEF\xBBx\n\n".to_vec(), vec![]));
}

#[test]
fn comments_before_the_usage_event_are_not_removed_or_delayed() {
    let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n";
    let frames: [&[u8]; 4] = [
        b": keep-alive\n",
        b": keep-alive\n",
        usage.as_bytes(),
        b"data: [DONE]\n\n",
    ];
    let (out, tail) = strip_frames(&frames, 1024);
    assert_eq!(
        out,
        vec![
            b": keep-alive\n".to_vec(),
            b": keep-alive\n".to_vec(),
            vec![],
            b"data: [DONE]\n\n".to_vec()
        ],
        "each comment leaves with its own frame; only the usage event is gone"
    );
    assert!(tail.is_empty());
}

#[test]
fn an_over_cap_event_passes_as_it_streams_and_is_never_dropped() {
    let content = "x".repeat(300);
    let event = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}],\"usage\":null}}\n\n"
    );
    let bytes = event.as_bytes();
    let frames: Vec<&[u8]> = bytes.chunks(50).collect();
    let (out, _) = strip_frames(&frames, 64);
    // Past the cap every frame goes out at once (but for a held candidate member).
    assert!(out[2].len() >= 36, "{}", out[2].len());
    assert_eq!(
        String::from_utf8(out.concat()).unwrap(),
        event.replace(",\"usage\":null", "")
    );
}

#[test]
fn a_usage_only_event_cut_without_its_blank_line_is_still_removed() {
    let body = "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n";
    assert_eq!(
        strip_all(&[body.as_bytes()], 1024),
        "data: {\"choices\":[{\"delta\":{}}]}\n\n"
    );
}

#[test]
fn an_object_continued_on_the_next_data_line_is_filtered_there_and_not_past_its_event() {
    let body = concat!(
        "data: {\"a\":1\r\n: note\r\ndata: ,\"b\":{\"usage\":null},\"usage\":null}\r\n\r\n",
        "data: {\"choices\":[],\ndata: \"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"a\":1\n\ndata: ,\"usage\":null}\n\n",
    );
    let want = concat!(
        "data: {\"a\":1\r\n: note\r\ndata: ,\"b\":{\"usage\":null}}\r\n\r\n",
        "data: {\"a\":1\n\ndata: ,\"usage\":null}\n\n",
    );
    for size in 1..=body.len() {
        let frames: Vec<&[u8]> = body.as_bytes().chunks(size).collect();
        assert_eq!(strip_all(&frames, 1024), want, "{size}");
    }
}

#[test]
fn a_crlf_split_after_the_usage_event_is_removed_whole() {
    let frames: [&[u8]; 3] = [
        b"data: {\"choices\":[],\"usage\":{}}\r\n\r",
        b"\n: after\r",
        b"\ndata: [DONE]\r\n\r\n",
    ];
    let (out, tail) = strip_frames(&frames, 1024);
    assert_eq!(
        out,
        vec![
            b"".to_vec(),
            b": after\r".to_vec(),
            b"\ndata: [DONE]\r\n\r\n".to_vec()
        ]
    );
    assert!(tail.is_empty());
}

/// A stream built part by part: its bytes, which of them the client must receive, and the
/// points by which released bytes must have gone out.
#[derive(Debug, Default)]
struct Stream {
    bytes: Vec<u8>,
    keep: Vec<bool>,
    /// `(upstream offset, expected output length)`: once the upstream up to the offset is
    /// fed, at least that much must be out.
    due: Vec<(usize, usize)>,
    kept: usize,
    last_cr: bool,
}

impl Stream {
    fn push(&mut self, bytes: &[u8], keep: bool) {
        self.bytes.extend_from_slice(bytes);
        self.keep.extend(std::iter::repeat_n(keep, bytes.len()));
        if keep {
            self.kept += bytes.len();
        }
    }

    /// A line terminator (never a `\n` right after a `\r`, which would join them), and the
    /// release points it makes when it completes a unit.
    fn term(&mut self, choice: u8, blank: bool, keep: bool, completes: bool) {
        let options: &[&[u8]] = if blank && self.last_cr {
            &[b"\r", b"\r\n"]
        } else {
            &[b"\n", b"\r\n", b"\r"]
        };
        let t = options[choice as usize % options.len()];
        self.push(&t[..1], keep);
        if completes {
            self.due.push((self.bytes.len(), self.kept));
        }
        if t.len() == 2 {
            self.push(&t[1..], keep);
            if completes {
                self.due.push((self.bytes.len(), self.kept));
            }
        }
        self.last_cr = t == b"\r";
    }
}

#[derive(Debug, Clone)]
enum Part {
    Comment(String),
    Blank,
    Chunk {
        text: String,
        usage: u8,
        spaced: bool,
        nested: bool,
        named: bool,
        inner_comment: bool,
        /// The object continues on a second `data:` line (the comment, if any, between).
        multiline: bool,
    },
    UsageOnly,
    Done,
}

fn part() -> impl Strategy<Value = Part> {
    let token = prop::sample::select(vec![
        "a",
        "é",
        " ",
        "\\\"",
        "\\\\",
        "\\\"usage\\\":null",
        // Text ending in `usage`: with its closing quote a `"usage"` not followed by `null`,
        // so its line is held unfiltered until its event is known to be kept.
        "usage",
        ",",
        "{",
        "}",
        ":",
        "data: ",
        "\\n",
        "xxxxxxxxxxxxxxxx",
    ]);
    let text = prop::collection::vec(token, 0..40).prop_map(|t| t.concat());
    prop_oneof![
        2 => text.clone().prop_map(Part::Comment),
        1 => Just(Part::Blank),
        6 => (
            text,
            0u8..3,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.25),
        )
            .prop_map(
                |(text, usage, spaced, nested, named, inner_comment, multiline)| Part::Chunk {
                    text,
                    usage,
                    spaced,
                    nested,
                    named,
                    inner_comment,
                    multiline,
                }
            ),
        1 => Just(Part::UsageOnly),
        1 => Just(Part::Done),
    ]
}

/// The upstream bytes of `parts`, with what the flag added marked as not kept.
fn build(parts: &[(Part, [u8; 4])], bom: bool, max: usize) -> Stream {
    let mut s = Stream::default();
    if bom {
        s.push(b"\xEF\xBB\xBF", true);
    }
    for (part, t) in parts {
        match part {
            Part::Comment(text) => {
                s.push(format!(":{text}").as_bytes(), true);
                s.term(t[0], false, true, true);
            }
            Part::Blank => s.term(t[0], true, true, true),
            Part::Chunk {
                text,
                usage,
                spaced,
                nested,
                named,
                inner_comment,
                multiline,
            } => {
                if *named {
                    s.push(b"event: chunk", true);
                    s.term(t[1], false, true, false);
                }
                let member: &[u8] = if *spaced {
                    b"\"usage\": null"
                } else {
                    b"\"usage\":null"
                };
                s.push(b"data: {", true);
                if *usage == 1 {
                    s.push(member, false);
                    s.push(if *spaced { b", " } else { b"," }, false);
                }
                s.push(b"\"id\":\"c\"", true);
                if *multiline {
                    s.term(t[1], false, true, false);
                    if *inner_comment {
                        s.push(b": between", true);
                        s.term(t[3], false, true, false);
                    }
                    s.push(b"data: ", true);
                }
                s.push(b",\"choices\":[{\"delta\":{\"content\":\"", true);
                s.push(text.as_bytes(), true);
                s.push(b"\"}", true);
                if *nested {
                    s.push(b",\"x\":{\"usage\":null}", true);
                }
                s.push(b"}]", true);
                if *usage == 2 {
                    s.push(if *spaced { b", " } else { b"," }, false);
                    s.push(member, false);
                }
                s.push(b"}", true);
                s.term(t[2], false, true, false);
                if *inner_comment && !*multiline {
                    s.push(b": inside", true);
                    s.term(t[3], false, true, false);
                }
                s.term(t[0], true, true, true);
            }
            Part::UsageOnly => {
                let line = b"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}";
                // An event longer than the cap cannot be held, so it cannot be removed.
                let keep = line.len() + 4 > max;
                s.push(line, keep);
                s.term(t[1], false, keep, false);
                s.term(t[0], true, keep, true);
            }
            Part::Done => {
                s.push(b"data: [DONE]", true);
                s.term(t[1], false, true, false);
                s.term(t[0], true, true, true);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Client bytes = upstream bytes minus exactly what the flag added, released no later
    /// than the frame that completes their event, with at most the cap held.
    #[test]
    fn only_what_the_flag_added_is_removed_and_nothing_waits(
        parts in prop::collection::vec((part(), any::<[u8; 4]>()), 0..16),
        bom in prop::bool::weighted(0.1),
        max in 96usize..400,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let s = build(&parts, bom, max);
        let expected: Vec<u8> = s
            .bytes
            .iter()
            .zip(&s.keep)
            .filter(|(_, k)| **k)
            .map(|(b, _)| *b)
            .collect();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(s.bytes.len() + 1)).collect();
        at.push(s.bytes.len());
        at.sort_unstable();
        let mut frames = Vec::new();
        let mut last = 0;
        for i in at {
            frames.push(&s.bytes[last..i]);
            last = i;
        }
        let (out, tail) = strip_frames(&frames, max);
        let mut released = 0;
        let mut fed = 0;
        for (frame, sent) in frames.iter().zip(&out) {
            fed += frame.len();
            prop_assert_eq!(&expected[released..released + sent.len()], &sent[..], "released out of order");
            released += sent.len();
            let due = s.due.iter().filter(|(o, _)| *o <= fed).map(|(_, n)| *n).max().unwrap_or(0);
            prop_assert!(released >= due, "after {} bytes: {} released, {} due", fed, released, due);
            let kept = s.keep[..fed].iter().filter(|k| **k).count();
            prop_assert!(kept - released <= max + NullUsage::MAX_CANDIDATE + 1);
        }
        prop_assert_eq!(&expected[released..], &tail[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes (SSE- and JSON-ish): the framing never changes what goes out, nothing
    /// is added, and the hold bounds hold (checked in `strip_frames`).
    #[test]
    fn any_bytes_any_framing_same_output(
        body in prop::collection::vec(prop_oneof![
            Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'{'), Just(b'}'), Just(b','),
            Just(b'"'), Just(b'\\'), Just(b'['), Just(b']'), Just(0xEF), Just(0xBB), Just(0xBF),
            prop::sample::select(b"datusgenl".to_vec()), any::<u8>()
        ], 0..400),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        max in 8usize..64,
    ) {
        let whole = strip_frames(&[&body], max);
        let whole: Vec<u8> = whole.0.concat().into_iter().chain(whole.1).collect();
        prop_assert!(whole.len() <= body.len());
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        at.sort_unstable();
        let mut frames = Vec::new();
        let mut last = 0;
        for i in at {
            frames.push(&body[last..i]);
            last = i;
        }
        frames.push(&body[last..]);
        let (out, tail) = strip_frames(&frames, max);
        let framed: Vec<u8> = out.concat().into_iter().chain(tail).collect();
        prop_assert_eq!(framed, whole);
    }
}
