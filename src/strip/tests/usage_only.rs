//! Whether a chunk is usage-only: read without serde where the chunk is plain, answered by
//! the tracker's own read, and always what serde says.

use super::*;

#[test]
fn a_plain_chunk_is_read_without_serde() {
    let usage = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":12,"d":{"a":0}}}"#;
    assert_eq!(read_usage_only(usage), Some(true));
    assert_eq!(
        read_usage_only(br#" {"choices":[{"i":0}],"usage":{"t":1}} "#),
        Some(false)
    );
    assert_eq!(
        read_usage_only(br#"{"choices":null,"usage":{"t":1}}"#),
        Some(false)
    );
    // Left to serde: an escape, a control character, a key twice, not JSON.
    assert_eq!(read_usage_only(br#"{"\u0075sage":{},"choices":[]}"#), None);
    assert_eq!(read_usage_only(b"{\"choices\":[],\n\"usage\":{}}"), None);
    assert_eq!(
        read_usage_only(br#"{"choices":[],"usage":{},"usage":{}}"#),
        None
    );
    assert_eq!(read_usage_only(br#"{"choices":[],"usage":{01}}"#), None);
    assert_eq!(read_usage_only(br#"[[],{"t":1}]"#), None);
}

/// Chunk data as a chat stream's chunks are written (printable ASCII, the members a chunk
/// has, each kind of `choices` and `usage`), now and then with a member twice, a tab, an
/// escape or a stray byte: what the tracker reads whole and answers for.
fn plain_chunk_data() -> impl Strategy<Value = String> {
    let member = prop::sample::select(vec![
        r#""choices":[]"#,
        r#""choices":null"#,
        r#""choices":[{"index":0,"delta":{},"finish_reason":"stop"}]"#,
        r#""choices":[{"index":1}]"#,
        r#""choices":{}"#,
        r#""usage":null"#,
        r#""usage":{"prompt_tokens":1,"completion_tokens":2}"#,
        r#""usage":{}"#,
        r#""usage":[]"#,
        r#""usage" : {"x":{"usage":null}}"#,
        r#""model":"m""#,
        r#""id":"chatcmpl-1""#,
        r#""x":{"usage":{}}"#,
        r#""created":1"#,
        "\"usage\":{\"t\":\"\t\"}",
        r#""choices":[],"choices":[]"#,
        r#""\u0075sage":{}"#,
    ]);
    (
        prop::collection::vec(member, 0..6),
        prop::sample::select(vec!["", "", "", " ", "x", "}"]),
    )
        .prop_map(|(members, junk)| format!("{{{}}}{junk}", members.join(",")))
}

/// JSON-ish chunk data: members named like a chunk's, values of every kind (arrays empty or
/// not, odd number spellings, nesting), spacing and escapes, and some of it broken.
fn chunk_data() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1e0",
        "1.50",
        "2E-3",
        "01",
        "1.",
        "-",
        "nul",
        "12345678901234567890123",
        "\"\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"é\"",
        "\"\\x\"",
        "\"\t\"",
        "[]",
        "{}",
        "[,]",
        "{,}",
    ])
    .prop_map(str::to_owned);
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,2}", inner), 0..3).prop_map(|m| {
                let m: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", m.join(","))
            }),
        ]
    });
    let key = prop::sample::select(vec![
        "choices",
        "usage",
        "id",
        "x",
        "\\u0075sage",
        "choices ",
        "Usage",
    ]);
    let ws = prop::sample::select(vec!["", "", " ", "  ", "\t", "\n"]);
    (
        prop::collection::vec((key, value, ws.clone()), 0..5),
        ws,
        prop::sample::select(vec!["", "", "", "x", ",", "}"]),
    )
        .prop_map(|(members, w, junk)| {
            let m: Vec<String> = members
                .iter()
                .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                .collect();
            format!("{w}{{{}}}{w}{junk}", m.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The reader's answer, where it gives one, is serde's.
    #[test]
    fn the_read_usage_only_check_equals_the_serde_one(data in chunk_data()) {
        if let Some(read) = read_usage_only(data.as_bytes()) {
            prop_assert_eq!(read, parse_usage_only(data.as_bytes()), "{}", data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The chat tracker's answer for an event it read whole, where it gives one, is the strip's
    /// own check's: the strip takes it instead of reading the chunk again.
    #[test]
    fn the_trackers_usage_only_answer_is_the_checks(
        data in prop_oneof![chunk_data(), plain_chunk_data()],
    ) {
        use crate::protocol::openai_chat::OpenAiChat;
        use crate::protocol::{Observation, Tracker};
        let mut obs = Observation::default();
        let event = SseEvent { name: b"", data: data.as_bytes(), complete: true };
        OpenAiChat::default().on_event(&event, &mut obs);
        let data = data.as_bytes();
        prop_assert_eq!(
            usage_only_known(data, obs.usage_only),
            is_usage_only(data),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
}

#[test]
fn the_tracker_answers_for_the_usage_chunk_and_the_finish_chunk() {
    use crate::protocol::openai_chat::OpenAiChat;
    use crate::protocol::{Observation, Tracker};
    let answer = |data: &[u8]| {
        let mut obs = Observation::default();
        let event = SseEvent {
            name: b"",
            data,
            complete: true,
        };
        OpenAiChat::default().on_event(&event, &mut obs);
        obs.usage_only
    };
    let usage = br#"{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":1}}"#;
    let finish = br#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#;
    assert_eq!(answer(usage), Some(true));
    assert_eq!(answer(finish), Some(false));
    assert_eq!(
        answer(br#"{"model":"m","choices":null,"usage":{"x":1}}"#),
        Some(false)
    );
    // Not printable ASCII: the strip checks it itself, whatever the tracker says.
    let tab = b"{\"model\":\"m\",\"choices\":[],\"usage\":{\"x\":\"\t\"}}";
    assert_eq!(answer(tab), Some(true));
    assert!(!usage_only_known(tab, Some(true)));
    assert!(usage_only_known(usage, Some(true)));
    assert!(!usage_only_known(usage, Some(false)));
}

#[test]
fn only_a_usage_that_is_not_null_makes_a_usage_only_chunk() {
    assert!(is_usage_only(
        br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
    ));
    assert!(is_usage_only(
        br#"{"choices":[],"x":{"usage":null},"usage" : {"total_tokens":2}}"#
    ));
    assert!(!is_usage_only(br#"{"choices":[],"usage" :  null}"#));
    assert!(!is_usage_only(br#"{"choices":[{"i":0}],"usage":null}"#));
    assert!(!is_usage_only(
        br#"{"choices":[{"i":0}],"usage":{"prompt_tokens":1}}"#
    ));
    assert!(!is_usage_only(br#"{"choices":[]}"#));
}
