//! The `"usage":null` filter alone: members removed with their comma, strings copied in runs,
//! and the skipping filter against the byte-by-byte one it replaced, however a line is cut.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

/// `line` filtered whole, as one line (the strip's tests use it too).
pub(in crate::strip) fn null_usage(line: &str) -> String {
    let mut f = NullUsage::new();
    let mut out = BytesMut::new();
    f.filter(line.as_bytes(), &mut out);
    f.end_line(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn null_usage_members_of_the_top_object_are_removed_with_their_comma() {
    let cases = [
        (r#"data: {"a":1,"usage":null}"#, r#"data: {"a":1}"#),
        (r#"data: {"usage":null,"a":1}"#, r#"data: {"a":1}"#),
        (r#"data:{"usage":null}"#, r#"data:{}"#),
        (
            r#"data: {"a":1, "usage" : null , "b":2}"#,
            r#"data: {"a":1, "b":2}"#,
        ),
        (r#"data: {"usage": null, "a": 1}"#, r#"data: {"a": 1}"#),
        (
            r#"data: { "a":{"usage":null},"b":"\"usage\":null","c":[{"usage":null}]}"#,
            r#"data: { "a":{"usage":null},"b":"\"usage\":null","c":[{"usage":null}]}"#,
        ),
        (
            r#"data: {"a":1,"usage":nul}"#,
            r#"data: {"a":1,"usage":nul}"#,
        ),
        (
            r#"data: {"a":1,"usage":{"x":1}}"#,
            r#"data: {"a":1,"usage":{"x":1}}"#,
        ),
        (
            r#"data: {"a":1,"usages":null}"#,
            r#"data: {"a":1,"usages":null}"#,
        ),
        (r#": {"a":1,"usage":null}"#, r#": {"a":1,"usage":null}"#),
        (
            r#"event: {"a":1,"usage":null}"#,
            r#"event: {"a":1,"usage":null}"#,
        ),
        (
            r#"data: [{"a":1,"usage":null}]"#,
            r#"data: [{"a":1,"usage":null}]"#,
        ),
        (
            r#"data: {"a":1},"usage":null}"#,
            r#"data: {"a":1},"usage":null}"#,
        ),
        // Cut short: what was held goes out as it was.
        (
            r#"data: {"a":1,"usage":null"#,
            r#"data: {"a":1,"usage":null"#,
        ),
    ];
    for (line, want) in cases {
        assert_eq!(null_usage(line), want, "{line}");
    }
}

#[test]
fn strings_copied_in_runs_filter_as_byte_by_byte() {
    // The filter copies a string's bytes up to the next `"` or `\` at once; fed one byte at
    // a time every run is cut at every byte. Both must agree, escapes included.
    for (line, want) in [
        (
            r#"data: {"id":"c\"usage\":null","usage":null,"x":"a\\","usage2":1}"#,
            r#"data: {"id":"c\"usage\":null","x":"a\\","usage2":1}"#,
        ),
        (
            r#"data: {"usage":null,"content":"say \"hi\" \\ \u00e9 {[,]}","n":[1,{"usage":null}]}"#,
            r#"data: {"content":"say \"hi\" \\ \u00e9 {[,]}","n":[1,{"usage":null}]}"#,
        ),
    ] {
        assert_eq!(null_usage(line), want);
        let mut f = NullUsage::new();
        let mut out = BytesMut::new();
        for b in line.as_bytes() {
            f.filter(std::slice::from_ref(b), &mut out);
        }
        f.end_line(&mut out);
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            want,
            "byte by byte: {line}"
        );
    }
}

/// The filter as it was before it skipped runs, byte by byte: the reference the skipping one
/// must equal, however its input is cut.
fn byte_by_byte(f: &mut NullUsage, bytes: &[u8], dest: &mut BytesMut) {
    for &b in bytes {
        match f.at {
            Place::Off => dest.extend_from_slice(&[b]),
            Place::Prefix(n) => {
                dest.extend_from_slice(&[b]);
                f.at = f.prefix(n, b);
            }
            Place::Value => {
                dest.extend_from_slice(&[b]);
                if b == b'{' {
                    f.at = Place::Object;
                    f.depth = 1;
                    f.first = true;
                } else if !is_ws(b) {
                    f.at = Place::Off;
                }
            }
            Place::Resume => {
                f.at = Place::Object;
                if b == b' ' {
                    dest.extend_from_slice(&[b]);
                } else {
                    f.object(b, dest);
                }
            }
            Place::Object => f.object(b, dest),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Lines of JSON-ish tokens (candidates, escapes, nesting, strings left open, long
    /// strings that reach `memchr2`), cut anywhere: the skipping filter gives what the
    /// byte-by-byte one gives.
    #[test]
    fn the_skipping_filter_equals_the_byte_by_byte_one(
        lines in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec![
                "data:", "data: ", "data:\t", " ", "\t", "{", "}", "[", "]", ",", ":", "\"",
                "\\", "\\\"", "\"usage\"", "\"usag", "null", "nul", "\"a\"", "1", "x", "é",
                "\"usage\":null", ",\"usage\":null", "\"usage\" : null ,", "{\"usage\":null}",
                ",\"usage\":null}", ",\"usage\":null,",
                "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", "                                  ",
            ]), 0..32).prop_map(|t| t.concat()),
            1..4,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        equals_byte_by_byte(&lines, &cuts)?;
    }

    /// Objects whose top-level members are mostly `"usage":null` spelt as chunks do, followed
    /// by what confirms it (`}`, `,`) or not (whitespace, a key, the line's end), cut
    /// anywhere: removed whole or byte by byte, the same.
    #[test]
    fn members_removed_whole_equal_byte_by_byte(
        lines in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec![
                ",\"usage\":null", ",\"usage\":null", ",\"usage\":nul", ",\"usage\":null}",
                "}", ",", " ", "\"b\"", ":1", "{", "[", "]", "\"", "\\", "\"usage\":null",
            ]), 0..12).prop_map(|t| format!("data: {{\"a\":\"x\"{}", t.concat())),
            1..4,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        equals_byte_by_byte(&lines, &cuts)?;
    }
}

/// Each of `lines` filtered cut at `cuts` gives what the byte-by-byte filter gives.
fn equals_byte_by_byte(
    lines: &[String],
    cuts: &[prop::sample::Index],
) -> Result<(), TestCaseError> {
    let mut reference = NullUsage::new();
    let mut skipping = NullUsage::new();
    for line in lines {
        let line = line.as_bytes();
        let mut want = BytesMut::new();
        byte_by_byte(&mut reference, line, &mut want);
        reference.end_line(&mut want);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(line.len() + 1)).collect();
        at.push(line.len());
        at.sort_unstable();
        let mut got = BytesMut::new();
        let mut last = 0;
        for i in at {
            skipping.filter(&line[last..i], &mut got);
            last = i;
        }
        skipping.end_line(&mut got);
        prop_assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    Ok(())
}
