use super::*;
use crate::protocol::testing::feed;
use proptest::prelude::*;

/// Each event as `name|data`, or its data alone.
fn stream(events: &[&str]) -> Observation {
    let events: Vec<(&str, &str)> = events
        .iter()
        .map(|e| e.split_once('|').unwrap_or(("", e)))
        .collect();
    feed(&mut OpenAiChat::default(), &events)
}

#[test]
fn a_repeated_preamble_is_skipped_only_when_nothing_in_it_matters() {
    let pre = r#"{"id":"c","object":"chat.completion.chunk","created":9,"model":"m","choices":["#;
    let obs = stream(&[
        &format!(r#"{pre}{{"index":0,"delta":{{"content":"ab"}}}}]}}"#),
        &format!(r#"{pre}{{"index":0,"delta":{{"content":"cde"}}}}]}}"#),
        &format!(r#"{pre}{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}"#),
    ]);
    assert_eq!(obs.output_chars, 5);
    assert_eq!(obs.native_finish.as_deref(), Some("stop"));
    // A documented reason is the record's own word, not a copy of the event's.
    assert!(matches!(obs.native_finish, Some(Cow::Borrowed(_))));

    // A preamble that carries text (no provider does, but nothing forbids it) is never
    // skipped: each chunk's text counts.
    let loud = r#"{"refusal":"no","choices":["#;
    let obs = stream(&[
        &format!(r#"{loud}{{"delta":{{"content":"a"}}}}]}}"#),
        &format!(r#"{loud}{{"delta":{{"content":"b"}}}}]}}"#),
    ]);
    assert_eq!(obs.output_chars, 6);

    // A chunk with another preamble is walked whole.
    let obs = stream(&[
        &format!(r#"{pre}{{"delta":{{"content":"a"}}}}]}}"#),
        r#"{"id":"d","usage":{"prompt_tokens":4,"completion_tokens":2},"choices":[]}"#,
    ]);
    assert_eq!(obs.usage.map(|u| u.output), Some(Some(2)));

    // The flags of a skipped preamble still hold: legacy `text` does not count beside a
    // chat `delta`, and a tool call that opened in the preamble starts output.
    let chat = r#"{"choices":[{"delta":{"reasoning_details":[{"text":"xyz"}],"reasoning":"#;
    let obs = stream(&[
        &format!(r#"{chat}"ab"}}}}]}}"#),
        &format!(r#"{chat}"c"}}}}]}}"#),
    ]);
    assert_eq!(obs.output_chars, 3);
    let tools = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"#;
    let obs = stream(&[
        &format!(r#"{tools}"{{"}}}}]}}}}]}}"#),
        &format!(r#"{tools}""}}}}]}}}}]}}"#),
    ]);
    assert!(obs.output_started);
    assert_eq!(obs.output_chars, 1);
}

#[test]
fn the_role_chunk_is_not_output_and_the_last_usage_wins() {
    let obs = stream(&[
        r#"{"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}"#,
        r#"{"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi!"}}],"usage":null}"#,
        r#"{"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#,
        r#"{"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}}"#,
        "[DONE]",
    ]);
    assert!(obs.terminal && obs.output_started);
    assert_eq!(obs.output_chars, 3);
    assert_eq!(obs.native_finish.as_deref(), Some("stop"));
    let u = obs.usage.unwrap();
    assert_eq!(
        (u.input, u.output, u.cache_read),
        (Some(5), Some(2), Some(3))
    );
}

#[test]
fn the_model_and_tier_are_read_from_the_head_or_decoded() {
    let obs = stream(&[
        r#"{"id":"c","model":"gpt-4o","service_tier":"priority","choices":[{"delta":{"content":"a"}}]}"#,
    ]);
    assert_eq!(obs.model.as_deref(), Some("gpt-4o"));
    assert_eq!(obs.service_tier.as_deref(), Some("priority"));
    assert!(matches!(obs.service_tier, Some(Cow::Borrowed(_))));
    assert_eq!(
        plain_head(br#"{"model":"m","choices":[],"service_tier":"flex"}"#),
        None
    );
    // After the choices, escaped, or a second time: the chunk is decoded, as before.
    let obs = stream(&[r#"{"model":"m","choices":[],"service_tier":"flex"}"#]);
    assert_eq!(
        (obs.model.as_deref(), obs.service_tier.as_deref()),
        (Some("m"), Some("flex"))
    );
    let obs = stream(&[r#"{"model":"a\/b","choices":[]}"#]);
    assert_eq!(obs.model.as_deref(), Some("a/b"));
    assert_eq!(
        plain_head(br#"{"model":"a","model":"b","choices":[]}"#),
        None
    );
    assert_eq!(plain_head(br#"{"choices":[],"model":"m"}"#), None);
    assert_eq!(plain_head(br#"[{"model":"m"}]"#), None);
}

#[test]
fn tool_calls_start_output_and_their_arguments_count() {
    let obs = stream(&[
        r#"{"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}"#,
    ]);
    assert!(obs.output_started);
    assert_eq!(obs.output_chars, 7);
    assert!(!obs.terminal);
}

#[test]
fn the_first_choice_names_the_finish_reason() {
    let obs = stream(&[
        r#"{"model":"m","choices":[{"index":1,"delta":{},"finish_reason":"length"}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"index":2,"delta":{},"finish_reason":"content_filter"}]}"#,
    ]);
    assert_eq!(obs.native_finish.as_deref(), Some("stop"));
}

#[test]
fn legacy_completions_count_text_and_reasoning_details_do_not_double() {
    let obs = stream(&[r#"{"model":"m","choices":[{"text":"abcd","index":0}]}"#]);
    assert_eq!(obs.output_chars, 4);
    let obs = stream(&[
        r#"{"model":"m","choices":[{"delta":{"reasoning":"abc","reasoning_details":[{"text":"abc"}]}}]}"#,
    ]);
    assert_eq!(obs.output_chars, 3);
}

#[test]
fn error_events_in_either_shape() {
    let obs = stream(&[r#"error|{"error":{"message":"boom","type":"server_error"}}"#]);
    assert_eq!(obs.error.unwrap().kind.as_deref(), Some("server_error"));
    let obs = stream(&[r#"error|{"message":"boom","type":"overloaded"}"#]);
    assert_eq!(obs.error.unwrap().kind.as_deref(), Some("overloaded"));
}

/// A member of a response body, as providers (and odd ones) write it.
fn member() -> impl Strategy<Value = String> {
    let count = prop_oneof![
        Just("7".to_owned()),
        Just("0".to_owned()),
        Just("null".to_owned()),
        Just("-1".to_owned()),
        Just("2.0".to_owned()),
        Just("1e2".to_owned()),
        Just("\"3\"".to_owned()),
        Just("18446744073709551616".to_owned()),
        // What the reader's first-byte dispatch sees: whitespace, a leading zero, a broken
        // `null`, a value that is no count at all.
        Just(" \n 7".to_owned()),
        Just("\tnull".to_owned()),
        Just("01".to_owned()),
        Just("nul".to_owned()),
        Just("{}".to_owned()),
    ];
    let text = prop_oneof![
        Just(r#""gpt-4o""#),
        Just(r#""stop""#),
        Just(r#""a\"b""#),
        Just(r#""\u0041""#),
        Just("null"),
        Just("5"),
    ];
    let details = prop::collection::vec(
        (
            prop::sample::select(vec![
                "cached_tokens",
                "cache_write_tokens",
                "text_tokens",
                "audio_tokens",
                "image_tokens",
                "video_tokens",
                "reasoning_tokens",
                "other",
            ]),
            count.clone(),
        ),
        0..4,
    )
    .prop_map(|m| {
        let m: Vec<String> = m.iter().map(|(k, v)| format!(r#""{k}": {v}"#)).collect();
        format!("{{{}}}", m.join(","))
    });
    let usage_member = prop_oneof![
        (
            prop::sample::select(vec![
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "prompt_cache_hit_tokens",
            ]),
            count
        )
            .prop_map(|(k, v)| format!(r#""{k}":{v}"#)),
        (
            prop::sample::select(vec!["prompt_tokens_details", "completion_tokens_details"]),
            prop_oneof![
                details,
                Just("null".to_owned()),
                Just(" null".to_owned()),
                Just("7".to_owned()),
                Just("[]".to_owned()),
            ]
        )
            .prop_map(|(k, v)| format!(r#""{k}":{v}"#)),
        Just(r#""cost":0.5"#.to_owned()),
        Just(r#""is_byok":false"#.to_owned()),
    ];
    let usage = prop::collection::vec(usage_member, 0..6)
        .prop_map(|m| format!(r#""usage":{{{}}}"#, m.join(",")));
    let choice = (text.clone(), prop_oneof![Just("0"), Just("1"), Just("null")]).prop_map(
        |(reason, index)| {
            format!(
                r#"{{"index":{index},"message":{{"role":"assistant","content":"x\"y\\"}},"finish_reason":{reason}}}"#
            )
        },
    );
    prop_oneof![
        text.clone().prop_map(|t| format!(r#""model":{t}"#)),
        text.prop_map(|t| format!(r#""service_tier" : {t}"#)),
        prop::collection::vec(choice, 0..3).prop_map(|c| format!(r#""choices":[{}]"#, c.join(","))),
        Just(r#""choices":null"#.to_owned()),
        Just(r#""choices":{}"#.to_owned()),
        usage,
        Just(r#""usage":null"#.to_owned()),
        Just(r#""x_groq":{"usage":{"prompt_tokens":1}}"#.to_owned()),
        Just(r#""error":{"message":"m"}"#.to_owned()),
        Just(r#""id":"chatcmpl-1","created":1,"n":[1,{"a":[true,false,null]}]"#.to_owned()),
        Just(r#""mod\u0065l":"escaped-key""#.to_owned()),
    ]
}

proptest! {
    /// For every body the plain reader accepts, the observation is the one serde's
    /// decoding gives; the bodies it gives up on are decoded by serde.
    #[test]
    fn the_plain_reader_reads_what_serde_reads(
        members in prop::collection::vec(member(), 0..7),
        spaced in any::<bool>(),
        tail in prop_oneof![Just(""), Just(" \n"), Just("x")],
    ) {
        let sep = if spaced { " ,\n " } else { "," };
        let body = format!("{{{}}}{tail}", members.join(sep));
        let observe = |chunk: Option<Chunk<'_>>| {
            let mut obs = Observation::default();
            if let Some(mut chunk) = chunk {
                OpenAiChat::default().absorb(&mut chunk, &mut obs);
            }
            format!("{obs:?}")
        };
        let serde = serde_json::from_slice::<Chunk<'_>>(body.as_bytes()).ok();
        let serde_read = serde.is_some();
        let serde = observe(serde);
        let mut plain = Chunk::default();
        if plain_chunk(body.as_bytes(), &mut plain).is_some() {
            prop_assert!(serde_read, "serde refused {}", body);
            prop_assert_eq!(&observe(Some(plain)), &serde, "{}", body);
            // What `decode_chunk` makes of it, read in place.
            let mut decoded = Chunk::default();
            prop_assert!(decode_chunk(body.as_bytes(), &mut decoded).is_some());
            prop_assert_eq!(&observe(Some(decoded)), &serde, "{}", body);
        } else {
            let mut decoded = Chunk::default();
            prop_assert_eq!(decode_chunk(body.as_bytes(), &mut decoded).is_some(), serde_read, "{}", body);
            if serde_read {
                prop_assert_eq!(&observe(Some(decoded)), &serde, "{}", body);
            }
        }
    }
}

#[test]
fn the_plain_reader_takes_the_common_response() {
    let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\""},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":null}"#;
    assert!(plain_chunk(body, &mut Chunk::default()).is_some());
}

#[test]
fn embeddings_report_input_and_a_known_zero_output() {
    let mut t = OpenAiChat::embeddings();
    let mut obs = Observation::default();
    t.on_json(
        br#"{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
        &mut obs,
    );
    let u = obs.usage.unwrap();
    assert_eq!((u.input, u.output), (Some(8), Some(0)));
    assert_eq!(obs.model.as_deref(), Some("text-embedding-3-small"));
}

#[test]
fn deepseek_cache_hits_are_cache_reads() {
    let mut obs = Observation::default();
    OpenAiChat::default().on_json(
        br#"{"model":"deepseek-chat","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_cache_hit_tokens":6}}"#,
        &mut obs,
    );
    assert_eq!(obs.usage.unwrap().cache_read, Some(6));
}

#[test]
fn tier_modalities_and_a_stated_cost_are_read() {
    let obs = stream(&[
        r#"{"model":"gpt-4o-audio-preview","service_tier":"priority","choices":[{"index":0,"delta":{"content":"a"}}]}"#,
        r#"{"model":"gpt-4o-audio-preview","service_tier":"priority","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":200,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":60,"text_tokens":40},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":150,"text_tokens":50}}}"#,
    ]);
    assert_eq!(obs.service_tier.as_deref(), Some("priority"));
    let d = obs.usage.unwrap().details;
    assert_eq!((d.input.audio, d.input.text), (Some(60), Some(40)));
    assert_eq!((d.output.audio, d.output.text), (Some(150), Some(50)));
    assert_eq!(d.input.image, None);

    let mut obs = Observation::default();
    OpenAiChat::default().on_json(
        br#"{"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":0.95,"is_byok":true,"cost_details":{"upstream_inference_cost":19,"upstream_inference_prompt_cost":null}}}"#,
        &mut obs,
    );
    let stated = obs.stated_cost.unwrap();
    assert_eq!(stated.cost, "0.95");
    assert_eq!(stated.upstream.as_deref(), Some("19"));
    assert!(stated.byok);
    assert_eq!(
        obs.notes["provider_cost_details"],
        serde_json::json!({"upstream_inference_cost": "19", "upstream_inference_prompt_cost": null})
    );

    // A cost that is not a number is no statement.
    let mut obs = Observation::default();
    OpenAiChat::default().on_json(
        br#"{"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":null}}"#,
        &mut obs,
    );
    assert_eq!(obs.stated_cost, None);
}

#[test]
fn a_finished_streams_preamble_starts_the_next_one_reset() {
    let pre = r#"{"id":"c","object":"chat.completion.chunk","created":9,"model":"m","choices":["#;
    let chunk = |delta: &str| format!(r#"{pre}{{"index":0,"delta":{delta}}}]}}"#);
    let events = [
        chunk(r#"{"role":"assistant","content":""}"#),
        chunk(r#"{"content":"ab"}"#),
        chunk(r#"{"content":"cde"}"#),
    ];
    let events: Vec<(&str, &str)> = events.iter().map(|e| ("", e.as_str())).collect();
    drop(SPARE.with(Cell::take));
    let mut first = OpenAiChat::default();
    feed(&mut first, &events);
    drop(first);
    let spare = SPARE.with(Cell::take).expect("a stream's preamble is kept");
    assert!(spare.has_room());
    assert_eq!(
        format!("{spare:?}"),
        format!("{:?}", Preamble::<Flags>::default())
    );
    SPARE.with(|cell| cell.set(Some(spare)));
    // The next stream takes it, and observes what a new preamble does.
    let other = [
        r#"{"id":"d","model":"n","choices":[{"delta":{"content":"x"}}]}"#,
        r#"{"id":"d","model":"n","choices":[{"delta":{"content":"yz"}}]}"#,
        r#"{"id":"d","model":"n","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
    ];
    let other: Vec<(&str, &str)> = other.iter().map(|e| ("", *e)).collect();
    let mut next = OpenAiChat::default();
    let with_spare = feed(&mut next, &other);
    assert!(SPARE.with(Cell::take).is_none(), "taken by the next stream");
    let fresh = feed(&mut OpenAiChat::default(), &other);
    assert_eq!(format!("{with_spare:?}"), format!("{fresh:?}"));
    assert_eq!(with_spare.output_chars, 3);
    // A JSON response's tracker walks nothing and keeps nothing.
    drop(next);
    assert!(SPARE.with(Cell::take).is_some());
    let mut json = OpenAiChat::default();
    json.on_json(
        br#"{"model":"m","choices":[]}"#,
        &mut Observation::default(),
    );
    drop(json);
    assert!(SPARE.with(Cell::take).is_none());
}
