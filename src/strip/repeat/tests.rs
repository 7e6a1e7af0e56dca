use super::super::null_usage::NullUsage;
use super::*;
use proptest::prelude::*;

/// What the filter alone gives for one whole line.
fn walked(line: &[u8]) -> Vec<u8> {
    let mut f = NullUsage::new();
    let mut out = BytesMut::new();
    f.filter(line, &mut out);
    f.end_line(&mut out);
    out.to_vec()
}

/// What the repeat gives for one whole line, after the lines it has seen.
fn repeated(repeat: &mut Repeat, line: &[u8]) -> Vec<u8> {
    let mut f = NullUsage::new();
    let mut out = BytesMut::from(&b"before"[..]);
    repeat.filter_line(&mut f, line, &mut out);
    f.end_line(&mut out);
    out.split_off(6).to_vec()
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}],\"usage\":null}}\n"
    )
}

#[test]
fn a_chat_stream_is_learned_once_then_fits_a_pattern_with_one_hole() {
    let mut repeat = Repeat::default();
    let mut lines = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for word in [
        " Hello",
        " \\\"usage\\\":null",
        " wor\\\\",
        "ld",
        "",
        " é\\n",
    ] {
        lines.push(chunk(&format!(r#"{{"content":"{word}"}}"#), "null"));
    }
    lines.push(chunk("{}", r#""stop""#));
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_bytes();
        let want = walked(line);
        assert!(!want.ends_with(b",\"usage\":null}\n") && want.len() + 13 == line.len());
        assert_eq!(repeated(&mut repeat, line), want, "line {i}");
        // The role line and the first content line are learned (`id`, `object`, `model` and
        // the text are holes); the second fits that and leaves the text the one hole. The
        // finish line, of another shape, is filtered without being learned: the pattern that
        // repeats stays.
        let holes = match i {
            0 | 1 => None,
            _ => Some(1),
        };
        assert_eq!(
            repeat.fast.ends.len().checked_sub(1),
            holes,
            "line {i}: {:?}",
            repeat.fast
        );
    }
    assert_eq!(repeat.full.ends.len(), 5, "the content line's holes");
    assert!(repeat.full.input.ends_with(
        br#""},"finish_reason":null}],"usage":null}
"#
    ));
}

#[test]
fn a_second_line_of_another_shape_in_a_row_is_learned() {
    let mut repeat = Repeat::default();
    let text = |word: &str| chunk(&format!(r#"{{"content":"{word}"}}"#), "null");
    let tool = |args: &str| {
        chunk(
            &format!(r#"{{"tool_calls":[{{"index":0,"function":{{"arguments":"{args}"}}}}]}}"#),
            "null",
        )
    };
    let see = |repeat: &mut Repeat, line: &str| {
        let line = line.as_bytes();
        assert_eq!(repeated(repeat, line), walked(line));
    };
    for word in ["a", "b", "c"] {
        see(&mut repeat, &text(word));
    }
    see(&mut repeat, &tool("{"));
    // One line of another shape: the content lines' pattern stays.
    assert!(repeat.fast.input.ends_with(
        br#""},"finish_reason":null}],"usage":null}
"#
    ));
    see(&mut repeat, &text("d"));
    assert!(!repeat.missed, "a line that fits ends the miss");
    see(&mut repeat, &tool("\"x"));
    see(&mut repeat, &tool(":1}"));
    // Two in a row: the new shape is learned, and the next line fits it.
    assert!(repeat.full.input.ends_with(
        br#""}}]},"finish_reason":null}],"usage":null}
"#
    ));
    see(&mut repeat, &tool("}"));
    assert!(repeat.fast.input.ends_with(
        br#""}}]},"finish_reason":null}],"usage":null}
"#
    ));
}

#[test]
fn a_line_whose_data_is_no_object_goes_out_as_it_is() {
    let mut repeat = Repeat::default();
    for line in [
        &b"data: [DONE]\n"[..],
        b"data:[\"usage\",{\"usage\":null}]\r\n",
        b"data: \t \"usage\"\n",
        b"data:\n",
        b"data: ",
        b"dat",
    ] {
        let mut f = NullUsage::new();
        let mut out = BytesMut::new();
        let proven = repeat.filter_line(&mut f, line, &mut out);
        assert_eq!(out, line);
        assert_eq!(proven, !line.contains(&b'"'));
        f.end_line(&mut out);
        assert_eq!(&out[..], walked(line), "{}", String::from_utf8_lossy(line));
        assert!(f.is_fresh());
    }
    assert!(repeat.full.ends.is_empty() && repeat.fast.ends.is_empty());
}

#[test]
fn bytes_that_only_look_like_the_pattern_are_walked() {
    let mut repeat = Repeat::default();
    let learned = br#"data: {"a":"x","b":{"c":"y"},"usage":null}
"#;
    let twice = br#"data: {"a":"z","b":{"c":"w"},"usage":null}
"#;
    for line in [&learned[..], twice] {
        assert_eq!(repeated(&mut repeat, line), walked(line));
    }
    assert_eq!(repeat.fast.ends.len(), 3);
    for line in [
        // A quote that is not escaped ends the hole where the learned one did not.
        &br#"data: {"a":"x","usage":null,"q":"","b":{"c":"y"},"usage":null}
"#[..],
        // The same text nested deeper, or inside a string.
        br#"data: {"a":"x","b":{"c":"y"},"d":{"usage":null}}
"#,
        br#"data: {"a":"x\","b":{"c":"y"},"usage":null}
"#,
        br#"data: {"a":"x\\","b":{"c":"y\"},\"usage\":null}
"#,
        // Whitespace the learned line did not have.
        br#"data: {"a":"x","b":{"c":"y"}, "usage" : null }
"#,
        // Cut short.
        br#"data: {"a":"x","b":{"c":"y"},"usage":null
"#,
        br#"data: {"a":"x","b":{"c":"y"},"usage":null"#,
    ] {
        assert_eq!(
            String::from_utf8_lossy(&repeated(&mut repeat, line)),
            String::from_utf8_lossy(&walked(line)),
        );
    }
}

#[test]
fn a_line_that_leaves_its_object_open_is_not_learned() {
    let mut repeat = Repeat::default();
    let line = br#"data: {"a":"x","usage":null,"b":"y""#;
    assert_eq!(repeated(&mut repeat, line), walked(line));
    assert!(repeat.full.ends.is_empty());
    let mut f = NullUsage::new();
    let mut out = BytesMut::new();
    repeat.filter_line(&mut f, line, &mut out);
    assert!(
        !f.is_done(),
        "the filter's own state is kept for the next data line"
    );
}

#[test]
fn string_end_skips_what_a_backslash_escapes() {
    assert_eq!(string_end(br#"ab"c"#), Some(2));
    assert_eq!(string_end(br#"a\"b"c"#), Some(4));
    assert_eq!(string_end(br#"a\\"c"#), Some(3));
    assert_eq!(string_end(br#"a\"#), None);
    assert_eq!(string_end(br#"a\""#), None);
    assert_eq!(string_end(b""), None);
    let long = format!("{}\\\"{}\"", "x".repeat(20), "y".repeat(30));
    assert_eq!(string_end(long.as_bytes()), Some(52));
}

/// String contents drawn from tokens that matter to the filter: escapes, quotes that end the
/// string early, `"usage":null` as text, structure.
fn contents() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "chatcmpl-1",
            " ",
            "é",
            "\\\"",
            "\\\\",
            "\\",
            "\"",
            "\\\"usage\\\":null",
            "\"usage\":null",
            ",\"usage\":null",
            "{",
            "}",
            "\":\"",
            "\\\":",
            ":",
            ",",
        ]),
        0..6,
    )
    .prop_map(|t| t.concat())
}

/// Lines of a few shapes (the member at the end, first, nested, spaced; strings after it;
/// objects left open; not an object), with `{0}` and `{1}` to fill.
const SHAPES: [&str; 8] = [
    "data: {\"id\":\"{0}\",\"choices\":[{\"delta\":{\"content\":\"{1}\"}}],\"usage\":null}\n",
    "data: {\"usage\":null,\"id\":\"{0}\",\"x\":{\"usage\":null,\"s\":\"{1}\"}}\n",
    "data: {\"id\":\"{0}\" , \"usage\" : null , \"t\":\"{1}\"}\r\n",
    "data:{\"a\":\"{0}\",\"b\":\"{1}\"}\n",
    "data: {\"a\":\"{0}\",\"b\":{\"usage\":null},\"c\":\"{1}\",\"usage\":null}\n",
    "data: {\"a\":\"{0}\",\"usage\":null,\"b\":\"{1}\"",
    "data: [\"{0}\",\"usage\":null,\"{1}\"]\n",
    "data: {\"a\":\"{0}\",\"usage\":null,\"o\":\"{1}\"}\r",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A stream's lines share their shapes and most of their contents, as chunks do, and
    /// differ in the rest (what would break a pattern included): each line filters through the
    /// repeat as through the walk, whether it is learned, fitted to the full or the merged
    /// pattern, or walked again.
    #[test]
    fn the_repeat_filters_every_line_as_the_walk(
        shapes in prop::collection::vec(prop::sample::select(SHAPES.to_vec()), 1..3),
        firsts in prop::collection::vec(prop_oneof![Just("c1".to_string()), contents()], 1..3),
        seconds in prop::collection::vec(contents(), 1..5),
        picks in prop::collection::vec(any::<(prop::sample::Index, prop::sample::Index, prop::sample::Index)>(), 1..24),
    ) {
        let mut repeat = Repeat::default();
        for (shape, first, second) in &picks {
            let line = shape
                .get(&shapes)
                .replace("{0}", first.get::<String>(&firsts).as_str())
                .replace("{1}", second.get::<String>(&seconds).as_str());
            let line = line.as_bytes();
            let (got, want) = (repeated(&mut repeat, line), walked(line));
            prop_assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// Where a filter stands in a plain string of a line's object: lines cut just after a value's
/// or a key's opening quote, at several depths, after members that are removed or not.
const PLAIN_STRING_STARTS: [&str; 6] = [
    "data: {\"id\":\"",
    "data: {\"a\":{\"b\":[\"",
    "data: {\"usage\":null,\"c\":\"",
    "data: {\"k\":\"v\",\"usage\":null,\"s\":\"",
    "data:{\"x\":[{\"y\":1},{\"",
    "data: {\"e\":\"\\\"\",\"u\":\"",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// What the repeat rests on (see `NullUsage::in_plain_string`): from a plain string, the
    /// contents that `string_end` delimits (the repeat's holes) go through the filter
    /// unchanged and leave it in a plain string at the same depth, whatever they hold. Fails
    /// if the filter and the repeat ever read a string's end differently.
    #[test]
    fn contents_of_a_plain_string_pass_unchanged(
        start in prop::sample::select(PLAIN_STRING_STARTS.to_vec()),
        tokens in contents(),
        raw in prop::collection::vec(any::<u8>(), 0..40),
        tail in prop::sample::select(vec!["\"}\n", "\",\"usage\":null}\n", "\\\"\"}"]),
    ) {
        let mut filter = NullUsage::new();
        let mut out = BytesMut::new();
        filter.filter(start.as_bytes(), &mut out);
        prop_assert!(filter.in_plain_string(), "{start}");
        let depth = filter.depth();
        let mut rest = tokens.into_bytes();
        rest.extend_from_slice(&raw);
        rest.extend_from_slice(tail.as_bytes());
        let Some(len) = string_end(&rest) else {
            return Ok(());
        };
        let contents = &rest[..len];
        out.clear();
        filter.filter(contents, &mut out);
        prop_assert_eq!(&out[..], contents);
        prop_assert!(filter.in_plain_string());
        prop_assert_eq!(filter.depth(), depth);
    }

    /// The word-at-a-time search finds what a byte loop finds.
    #[test]
    fn find_in_string_equals_a_byte_loop(
        bytes in prop::collection::vec(
            prop_oneof![Just(b'"'), Just(b'\\'), Just(b'a'), Just(0x22 ^ 0x80), any::<u8>()],
            0..80,
        ),
        sparse in 0usize..80,
    ) {
        // Mostly bytes that are neither, so that the first match lies at any offset.
        let bytes: Vec<u8> = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| if i < sparse && (b == b'"' || b == b'\\') { b'x' } else { b })
            .collect();
        let want = bytes.iter().position(|&b| b == b'"' || b == b'\\');
        prop_assert_eq!(null_usage::find_in_string(&bytes), want);
    }

    #[test]
    fn find_colon_equals_a_byte_loop(
        bytes in prop::collection::vec(
            prop_oneof![Just(b':'), Just(b'"'), Just(b':' ^ 0x80), Just(b';'), any::<u8>()],
            0..80,
        ),
        sparse in 0usize..80,
    ) {
        // Mostly bytes that are not, so that the first colon lies at any offset.
        let bytes: Vec<u8> = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| if i < sparse && b == b':' { b'x' } else { b })
            .collect();
        let want = bytes.iter().position(|&b| b == b':');
        prop_assert_eq!(null_usage::find_colon(&bytes), want);
    }
}

#[test]
fn a_finished_streams_patterns_start_the_next_one_cleared() {
    // Whatever an earlier test left on this thread.
    drop(Repeat::new());
    let text = |word: &str| chunk(&format!(r#"{{"content":"{word}"}}"#), "null");
    let mut repeat = Repeat::new();
    for word in ["a", "b", "c"] {
        repeated(&mut repeat, text(word).as_bytes());
    }
    repeated(&mut repeat, chunk("{}", r#""stop""#).as_bytes());
    assert!(repeat.missed && !repeat.fast.ends.is_empty());
    let room = repeat.full.input.capacity();
    repeat.finish();
    let mut next = Repeat::new();
    assert_eq!(next.full.input.capacity(), room, "the room is kept");
    assert_eq!(format!("{next:?}"), format!("{:?}", Repeat::default()));
    // It learns and filters as a new one does.
    let mut new = Repeat::default();
    for line in [chunk("{}", "null"), text("d"), text("e")] {
        let line = line.as_bytes();
        assert_eq!(repeated(&mut next, line), walked(line));
        repeated(&mut new, line);
        assert_eq!(format!("{next:?}"), format!("{new:?}"));
    }
    // Patterns of a line longer than the room kept are freed with their stream.
    let refusal = |r: String| chunk(&format!(r#"{{"refusal":"{r}"}}"#), "null");
    repeated(&mut next, refusal("x".repeat(2 * SPARE_ROOM)).as_bytes());
    repeated(&mut next, refusal("y".repeat(2 * SPARE_ROOM)).as_bytes());
    assert!(next.learned.capacity() > SPARE_ROOM);
    next.finish();
    assert_eq!(Repeat::new().full.input.capacity(), 0);
}
