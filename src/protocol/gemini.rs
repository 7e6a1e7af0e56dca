//! Gemini `…:generateContent` and `…:streamGenerateContent`.
//!
//! Every chunk of a stream (`?alt=sse`) is a whole `GenerateContentResponse`: candidates with
//! text parts, a `finishReason` on the last one, and a cumulative `usageMetadata` (the last one
//! wins). Output is `candidatesTokenCount + thoughtsTokenCount` (either may be missing). A
//! prompt blocked before generation has no candidates but a `promptFeedback.blockReason`.
//! Without `alt=sse`, `streamGenerateContent` answers with a JSON array of the same chunks.

use std::borrow::Cow;

use serde::Deserialize;

use super::preamble::{Effect, Preamble, State};
use super::scan::Value;
use super::{InBandError, Modalities, ModalityCount, Observation, Tracker, Usage, UsageDetails};
use crate::record::{word, word_of};
use crate::sse::SseEvent;

/// Reads Gemini responses.
#[derive(Debug, Default)]
pub(crate) struct Gemini {
    /// The finish reason came from candidate 0 (other candidates no longer overwrite it).
    finish_of_first: bool,
    /// The stream's repeated preamble (`{"candidates": [{"content": {"parts": [{`).
    preamble: Preamble<Flags>,
    /// The chunks whose decoding is put off (see [`Gemini::on_event`]): the first of the run,
    /// and the latest when later chunks repeated the first one's shape (empty otherwise).
    first: Vec<u8>,
    latest: Vec<u8>,
    /// The preamble's generation the run's chunks share; `None` when nothing is put off.
    run: Option<u64>,
    /// What decoding a chunk of the run would set (the same for all of them).
    pending_sets: Sets,
}

/// What the members of a chunk say, whatever their values: bits, so that adding what later
/// members did ([`State::then`]) is one `or` per event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Flags(u8);

impl Flags {
    /// A function call or executable code: output has started, and the chunk is decoded at
    /// once (its arguments are keys nobody vouches for).
    const CALL: u8 = 1 << 3;
    /// A finish reason, a blocked prompt, an error, or a member that could set the model,
    /// usage or tier but is not of the expected kind: the chunk is decoded at once.
    const NOW: u8 = 1 << 4;

    fn call(self) -> bool {
        self.0 & Self::CALL != 0
    }

    fn now(self) -> bool {
        self.0 & Self::NOW != 0
    }

    /// What decoding the chunk later would set.
    fn sets(self) -> Sets {
        Sets(self.0 & Sets::ALL)
    }
}

impl State for Flags {
    #[inline]
    fn then(&mut self, later: &Self) {
        self.0 |= later.0;
    }
}

/// Which of the members a deferred chunk's decoding would set: the model, the usage, the tier
/// (bits of [`Flags`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sets(u8);

impl Sets {
    const MODEL: u8 = 1;
    const USAGE: u8 = 1 << 1;
    const TIER: u8 = 1 << 2;
    const ALL: u8 = Self::MODEL | Self::USAGE | Self::TIER;

    /// Whether decoding a chunk that sets `self` overwrites everything one that sets `older`
    /// would have set.
    fn covers(self, older: Sets) -> bool {
        older.0 & !self.0 == 0
    }

    fn any(self) -> bool {
        self.0 != 0
    }
}

impl Gemini {
    fn absorb(&mut self, chunk: Chunk<'_>, obs: &mut Observation) {
        if let Some(model) = chunk.model_version {
            obs.model = Some(model.into_owned());
        }
        for candidate in &chunk.candidates {
            let Some(reason) = &candidate.finish_reason else {
                continue;
            };
            obs.terminal = true;
            let first = candidate.index.unwrap_or(0) == 0;
            if first || !self.finish_of_first {
                obs.native_finish = Some(word(reason));
                self.finish_of_first |= first;
            }
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            obs.terminal = true;
            obs.native_finish = Some(word_of(reason));
        }
        if let Some(u) = chunk.usage_metadata {
            if let Some(tier) = u.service_tier {
                obs.service_tier = Some(word_of(tier));
            }
            let thoughts = u.thoughts_token_count;
            obs.usage = Some(Usage {
                input: u.prompt_token_count,
                output: Some(
                    u.candidates_token_count
                        .unwrap_or(0)
                        .saturating_add(thoughts.unwrap_or(0)),
                ),
                cache_read: u.cached_content_token_count,
                cache_write: None,
                reasoning: thoughts,
                details: UsageDetails {
                    input: Modalities::from_gemini(u.prompt_tokens_details.as_deref()),
                    cache_read: Modalities::from_gemini(u.cache_tokens_details.as_deref()),
                    output: Modalities::from_gemini(u.candidates_tokens_details.as_deref()),
                    tool_use_prompt: u.tool_use_prompt_token_count,
                    ..UsageDetails::default()
                },
            });
        }
        if let Some(error) = chunk.error {
            obs.error = Some(error.into_error());
        }
    }
}

/// The model named in a Gemini path (`/v1beta/models/gemini-2.5-flash:generateContent`).
pub(crate) fn path_model(path: &str) -> Option<&str> {
    let (head, _) = path.rsplit_once(':')?;
    let model = head.rsplit_once("/models/")?.1;
    (!model.is_empty()).then_some(model)
}

impl Gemini {
    /// Decodes `data` and absorbs it; `false` when serde refuses it.
    fn decode(&mut self, data: &[u8], obs: &mut Observation) -> bool {
        match serde_json::from_slice::<Chunk<'_>>(data) {
            Ok(chunk) => {
                self.absorb(chunk, obs);
                true
            }
            Err(_) => false,
        }
    }

    /// Decodes `data`, a chunk that cannot wait, after the deferred one — unless `data` decodes
    /// and sets everything the deferred chunk would have set (the last chunk of a stream, with
    /// its finish reason, repeats the usage and the model): then the deferred chunk is dropped
    /// undecoded, for the same observation.
    fn decode_now(&mut self, data: &[u8], obs: &mut Observation) {
        let chunk = serde_json::from_slice::<Chunk<'_>>(data).ok();
        match chunk {
            Some(chunk) if chunk.sets().covers(self.pending_sets) => {
                self.drop_run();
                self.absorb(chunk, obs);
            }
            chunk => {
                self.settle(obs);
                if let Some(chunk) = chunk {
                    self.absorb(chunk, obs);
                }
            }
        }
    }

    /// Decodes the run of deferred chunks, if any: its latest chunk, which sets all that the
    /// earlier ones would have; when serde refuses it, it refused every chunk that repeated
    /// the first one's shape (the same bytes but for plain counts and plain text), and the
    /// first is decoded instead.
    fn settle(&mut self, obs: &mut Observation) {
        if self.run.is_some() {
            let (first, latest) = (
                std::mem::take(&mut self.first),
                std::mem::take(&mut self.latest),
            );
            if latest.is_empty() || !self.decode(&latest, obs) {
                self.decode(&first, obs);
            }
            (self.first, self.latest) = (first, latest);
        }
        self.drop_run();
    }

    /// Forgets the deferred chunks (keeping the buffers).
    fn drop_run(&mut self) {
        self.first.clear();
        self.latest.clear();
        self.run = None;
        self.pending_sets = Sets::default();
    }
}

impl Tracker for Gemini {
    /// Every chunk carries the cumulative usage, and decoding each one with serde cost five
    /// times what the other formats cost per event. A chunk whose decoding could only set the
    /// model, the usage and the tier — no finish reason, no blocked prompt, no error, no call —
    /// is kept instead, and decoded only when the next chunk does not overwrite all of that,
    /// when a chunk must be decoded at once, or at the end of the stream
    /// ([`Tracker::finish`]): the observation is the one decoding every chunk gives, for one
    /// decode per stream. Only a chunk that closed with its blank line and looks whole is
    /// kept (a stream cut in the middle of its last chunk leaves the previous usage standing).
    fn on_event(&mut self, event: &SseEvent<'_>, obs: &mut Observation) {
        let data = event.data;
        let mut chars = 0;
        let mut printable = true;
        let flags = self.preamble.visit(
            data,
            #[inline(always)]
            |key, value, flags| match (key, value) {
                (b"text", Value::Str(t)) => {
                    match t.printable_chars() {
                        Some(n) => chars += n,
                        None => {
                            chars += t.chars();
                            printable = false;
                        }
                    }
                    Effect::Varies
                }
                (b"functionCall" | b"executableCode", Value::Object) => {
                    flags.0 |= Flags::CALL;
                    Effect::Constant
                }
                (b"usageMetadata", Value::Object) => {
                    flags.0 |= Sets::USAGE;
                    Effect::Constant
                }
                (b"modelVersion", Value::Str(_)) => {
                    flags.0 |= Sets::MODEL;
                    Effect::Constant
                }
                (b"serviceTier", Value::Str(_)) => {
                    flags.0 |= Sets::TIER;
                    Effect::Constant
                }
                (
                    b"finishReason" | b"promptFeedback" | b"error" | b"usageMetadata"
                    | b"modelVersion" | b"serviceTier",
                    _,
                ) => {
                    flags.0 |= Flags::NOW;
                    Effect::Constant
                }
                _ => Effect::Quiet,
            },
        );
        let (now, sets) = (flags.now(), flags.sets());
        obs.output_chars += chars;
        obs.output_started |= chars > 0 || flags.call();
        let whole = event.complete
            && (matches!((data.first(), data.last()), (Some(b'{'), Some(b'}'))) || {
                let t = data.trim_ascii();
                t.first() == Some(&b'{') && t.last() == Some(&b'}')
            });
        if now || flags.call() || !whole {
            self.decode_now(data, obs);
            return;
        }
        if !sets.any() {
            // Decoding it would set nothing.
            return;
        }
        // A chunk that repeats the shape of the run's first — the same bytes but for counts
        // serde reads as `u64` and a text without escapes or control characters — decodes
        // exactly when every other such chunk does, and sets what they set: it replaces the
        // latest undecoded. Any other chunk starts a run of its own.
        let shape = self.preamble.shape();
        let repeats = shape.repeated
            && shape.plain
            && printable
            && self.run == Some(shape.generation)
            && sets == self.pending_sets;
        if repeats {
            self.latest.clear();
            self.latest.extend_from_slice(data);
        } else {
            self.settle(obs);
            self.first.extend_from_slice(data);
            self.run = Some(shape.generation);
            self.pending_sets = sets;
        }
    }

    fn finish(&mut self, obs: &mut Observation) {
        self.settle(obs);
    }

    fn on_json(&mut self, body: &[u8], obs: &mut Observation) {
        if let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(body) {
            self.absorb(chunk, obs);
        } else if let Ok(chunks) = serde_json::from_slice::<Vec<Chunk<'_>>>(body) {
            for chunk in chunks {
                self.absorb(chunk, obs);
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    #[serde(borrow, default, deserialize_with = "super::null_as_default")]
    candidates: Vec<Candidate<'a>>,
    #[serde(borrow, default)]
    usage_metadata: Option<UsageMetadata<'a>>,
    #[serde(borrow, default)]
    model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    error: Option<InBandError>,
}

impl Chunk<'_> {
    /// What absorbing the chunk overwrites of what a deferred chunk may set.
    fn sets(&self) -> Sets {
        let usage = self.usage_metadata.as_ref();
        let bit = |set: bool, bit: u8| if set { bit } else { 0 };
        Sets(
            bit(self.model_version.is_some(), Sets::MODEL)
                | bit(usage.is_some(), Sets::USAGE)
                | bit(usage.is_some_and(|u| u.service_tier.is_some()), Sets::TIER),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    index: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(borrow, default)]
    block_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata<'a> {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(borrow, default)]
    prompt_tokens_details: Option<Vec<ModalityCount<'a>>>,
    #[serde(borrow, default)]
    cache_tokens_details: Option<Vec<ModalityCount<'a>>>,
    #[serde(borrow, default)]
    candidates_tokens_details: Option<Vec<ModalityCount<'a>>>,
    #[serde(default)]
    tool_use_prompt_token_count: Option<u64>,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::scan;
    use crate::protocol::testing::feed;
    use proptest::prelude::*;

    #[test]
    fn a_blocked_prompt_is_filtered_and_ends_the_stream() {
        let obs = feed(
            &mut Gemini::default(),
            &[(
                "",
                r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}}"#,
            )],
        );
        assert!(obs.terminal);
        assert_eq!(obs.native_finish.as_deref(), Some("SAFETY"));
        assert_eq!(obs.usage.unwrap().output, Some(0));
        assert!(!obs.output_started);
    }

    #[test]
    fn a_json_array_of_chunks_is_read_to_its_last_usage() {
        let body = br#"[{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"index":0}],"usageMetadata":{"promptTokenCount":4},"modelVersion":"gemini-2.5-flash"},
            {"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"thoughtsTokenCount":3}}]"#;
        let mut obs = Observation::default();
        Gemini::default().on_json(body, &mut obs);
        let u = obs.usage.unwrap();
        assert_eq!(
            (u.input, u.output, u.reasoning),
            (Some(4), Some(5), Some(3))
        );
        assert_eq!(obs.native_finish.as_deref(), Some("STOP"));
        assert_eq!(obs.model.as_deref(), Some("gemini-2.5-flash"));
    }

    fn chunk(text: &str, usage: &str, rest: &str) -> String {
        format!(
            r#"{{"candidates": [{{"content": {{"parts": [{{"text": "{text}"}}],"role": "model"}},"index": 0}}],"usageMetadata": {{{usage}}}{rest}}}"#
        )
    }

    /// Decoding every chunk as it comes, the reference the deferred decoding must equal.
    fn eager(events: &[(&str, &str)]) -> Observation {
        let mut g = Gemini::default();
        let mut obs = Observation::default();
        for (_, data) in events {
            g.decode(data.as_bytes(), &mut obs);
            let (mut chars, mut call) = (0, false);
            scan::visit(data.as_bytes(), |k, v| match (k, v) {
                (b"text", Value::Str(t)) => chars += t.chars(),
                (b"functionCall" | b"executableCode", Value::Object) => call = true,
                _ => {}
            });
            obs.output_chars += chars;
            obs.output_started |= chars > 0 || call;
        }
        obs
    }

    #[test]
    fn deferred_chunks_give_what_decoding_each_gives() {
        let streams: Vec<Vec<String>> = vec![
            // The model and the tier only in the first chunk: they stand.
            vec![
                chunk("a", r#""promptTokenCount": 3,"serviceTier": "priority""#, r#","modelVersion": "gemini-x""#),
                chunk("bc", r#""promptTokenCount": 3,"candidatesTokenCount": 2"#, ""),
                chunk("d", r#""promptTokenCount": 3,"candidatesTokenCount": 3"#, ""),
            ],
            // The last chunk finishes: decoded at once, after the one put off.
            vec![
                chunk("a", r#""promptTokenCount": 3"#, r#","modelVersion": "m1""#),
                chunk("b", r#""promptTokenCount": 3,"candidatesTokenCount": 2"#, r#","modelVersion": "m2""#),
                r#"{"candidates": [{"content": {"parts": [{"text": "c"}]},"finishReason": "STOP","index": 0}]}"#.into(),
            ],
            // A chunk without usage between two with it.
            vec![
                chunk("a", r#""promptTokenCount": 3,"candidatesTokenCount": 1"#, ""),
                r#"{"candidates": [{"content": {"parts": [{"text": "b"}]},"index": 0}]}"#.into(),
                r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f","args": {"usageMetadata": {}}}}]},"index": 0}]}"#.into(),
            ],
        ];
        for events in &streams {
            let events: Vec<(&str, &str)> = events.iter().map(|e| ("", e.as_str())).collect();
            let deferred = feed(&mut Gemini::default(), &events);
            assert_eq!(
                format!("{deferred:?}"),
                format!("{:?}", eager(&events)),
                "{events:?}"
            );
        }
    }

    /// A chunk as a generator writes it: the text, then the members after it in the order
    /// given, each a key and a value as written.
    fn written(text: &str, colon: &str, after: &[(String, String)]) -> String {
        let mut chunk = format!(
            r#"{{"candidates"{colon}[{{"content"{colon}{{"parts"{colon}[{{"text"{colon}"{text}"}}],"role"{colon}"model"}},"index"{colon}0}}]"#
        );
        for (key, value) in after {
            chunk.push_str(&format!(r#","{key}"{colon}{value}"#));
        }
        chunk.push('}');
        chunk
    }

    /// Chunks of a stream, with usage counts that grow as Gemini's do or are written in any
    /// other way (a string, a fraction, null, an escape in a key, reordered, missing), with or
    /// without the model, the tier, a finish reason; now and then cut short.
    fn chunks() -> impl Strategy<Value = Vec<String>> {
        let count = prop_oneof![
            4 => (0u64..100_000).prop_map(|n| n.to_string()),
            1 => Just(r#""7""#.to_string()),
            1 => Just("1.5".to_string()),
            1 => Just("null".to_string()),
            1 => Just("-3".to_string()),
            1 => Just("1e2".to_string()),
            1 => Just("true".to_string()),
        ];
        let key = prop_oneof![
            6 => Just("candidatesTokenCount"),
            2 => Just("promptTokenCount"),
            2 => Just("thoughtsTokenCount"),
            1 => Just(r"candidatesTokenCoun\u0074"),
        ];
        let usage = prop_oneof![
            6 => proptest::collection::vec((key, count), 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!(r#""{k}": {v}"#))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
            1 => Just(r#"{"promptTokenCount": 3,"serviceTier": "flex"}"#.to_string()),
            1 => Just("null".to_string()),
            1 => Just("[]".to_string()),
        ];
        let member = prop_oneof![
            6 => usage.prop_map(|u| ("usageMetadata".to_string(), u)),
            2 => Just(("modelVersion".to_string(), r#""gemini-x""#.to_string())),
            1 => Just(("modelVersion".to_string(), r#""gem\u0069ni""#.to_string())),
            1 => Just(("finishReason".to_string(), r#""STOP""#.to_string())),
            1 => Just(("responseId".to_string(), r#""r1""#.to_string())),
        ];
        let chunk = (
            prop_oneof![Just(" word"), Just(r#"a\"b"#), Just("é"), Just("")],
            prop_oneof![Just(": "), Just(":")],
            proptest::collection::vec(member, 0..4),
            proptest::option::weighted(0.1, any::<prop::sample::Index>()),
        )
            .prop_map(|(text, colon, after, cut)| {
                let chunk = written(text, colon, &after);
                match cut {
                    Some(cut) => {
                        let mut end = cut.index(chunk.len());
                        while !chunk.is_char_boundary(end) {
                            end -= 1;
                        }
                        chunk[..end].to_string()
                    }
                    None => chunk,
                }
            });
        proptest::collection::vec(chunk, 1..8)
    }

    /// Chunks of one shape, as most streams send: the counts grow, or turn into what serde
    /// refuses as a `u64` now and then, and the text may hold a raw control character.
    fn same_shape() -> impl Strategy<Value = Vec<String>> {
        let count = prop_oneof![
            6 => (1u64..100_000).prop_map(|n| n.to_string()),
            1 => Just("1.5".to_string()),
            1 => Just("007".to_string()),
            1 => Just("true".to_string()),
            1 => Just("99999999999999999999".to_string()),
        ];
        let text = prop_oneof![
            4 => Just(" word"),
            1 => Just("a\tb"),
            1 => Just("a\u{1}b"),
            1 => Just(r#"a\"b"#),
        ];
        let chunk = (text, count.clone(), count).prop_map(|(text, candidates, total)| {
            written(
                text,
                ": ",
                &[
                    (
                        "usageMetadata".into(),
                        format!(
                            r#"{{"promptTokenCount": 120,"candidatesTokenCount": {candidates},"totalTokenCount": {total}}}"#
                        ),
                    ),
                    ("modelVersion".into(), r#""gemini-x""#.into()),
                ],
            )
        });
        proptest::collection::vec(chunk, 1..10)
    }

    proptest! {
        #[test]
        fn deferred_chunks_give_what_decoding_each_gives_on_any_stream(
            events in prop_oneof![chunks(), same_shape()],
        ) {
            let events: Vec<(&str, &str)> = events.iter().map(|e| ("", e.as_str())).collect();
            let deferred = feed(&mut Gemini::default(), &events);
            prop_assert_eq!(format!("{deferred:?}"), format!("{:?}", eager(&events)));
        }
    }

    #[test]
    fn the_last_chunk_that_repeats_the_usage_and_model_is_decoded_alone() {
        let first = written(
            " a",
            ": ",
            &[
                (
                    "usageMetadata".into(),
                    r#"{"promptTokenCount": 3,"candidatesTokenCount": 1}"#.into(),
                ),
                ("modelVersion".into(), r#""m1""#.into()),
            ],
        );
        let last = written(
            " b",
            ": ",
            &[
                ("finishReason".into(), r#""STOP""#.into()),
                (
                    "usageMetadata".into(),
                    r#"{"promptTokenCount": 3,"candidatesTokenCount": 2}"#.into(),
                ),
                ("modelVersion".into(), r#""m2""#.into()),
            ],
        );
        let mut g = Gemini::default();
        let mut obs = Observation::default();
        for data in [&first, &last] {
            let event = SseEvent {
                name: b"",
                data: data.as_bytes(),
                complete: true,
            };
            g.on_event(&event, &mut obs);
        }
        assert!(g.run.is_none(), "dropped, not decoded");
        assert_eq!(obs.model.as_deref(), Some("m2"));
        assert_eq!(obs.usage.map(|u| u.output), Some(Some(2)));
        // Without the model in the last chunk, the deferred one is decoded first.
        let last = last.replace(r#","modelVersion": "m2""#, "");
        let events = [("", first.as_str()), ("", last.as_str())];
        let obs = feed(&mut Gemini::default(), &events);
        assert_eq!(obs.model.as_deref(), Some("m1"));
        assert_eq!(format!("{obs:?}"), format!("{:?}", eager(&events)));
    }

    #[test]
    fn a_stream_cut_in_its_last_chunk_keeps_the_usage_before_it() {
        let whole = chunk(
            "ab",
            r#""promptTokenCount": 3,"candidatesTokenCount": 2"#,
            "",
        );
        let cut = chunk(
            "c",
            r#""promptTokenCount": 3,"candidatesTokenCount": 3"#,
            "",
        );
        let cut = &cut[..cut.len() - 30];
        let mut g = Gemini::default();
        let mut obs = Observation::default();
        for (data, complete) in [(whole.as_str(), true), (cut, false)] {
            let event = SseEvent {
                name: b"",
                data: data.as_bytes(),
                complete,
            };
            g.on_event(&event, &mut obs);
            if complete {
                assert!(obs.usage.is_none(), "put off");
            }
        }
        g.finish(&mut obs);
        assert_eq!(obs.usage.map(|u| u.output), Some(Some(2)));
        assert_eq!(obs.output_chars, 3);
    }

    #[test]
    fn function_calls_start_output() {
        let obs = feed(
            &mut Gemini::default(),
            &[(
                "",
                r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}]}"#,
            )],
        );
        assert!(obs.output_started);
    }

    #[test]
    fn modalities_tool_use_and_the_tier_are_read() {
        let mut obs = Observation::default();
        Gemini::default().on_json(
            br#"{"candidates":[{"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1000,"cachedContentTokenCount":300,"candidatesTokenCount":50,"thoughtsTokenCount":100,"toolUsePromptTokenCount":40,"promptTokensDetails":[{"modality":"TEXT","tokenCount":200},{"modality":"AUDIO","tokenCount":800}],"cacheTokensDetails":[{"modality":"AUDIO","tokenCount":300}],"candidatesTokensDetails":[{"modality":"IMAGE","tokenCount":50}],"serviceTier":"priority"},"modelVersion":"gemini-2.5-flash"}"#,
            &mut obs,
        );
        assert_eq!(obs.service_tier.as_deref(), Some("priority"));
        let d = obs.usage.unwrap().details;
        assert_eq!((d.input.text, d.input.audio), (Some(200), Some(800)));
        assert_eq!((d.cache_read.audio, d.cache_read.text), (Some(300), None));
        assert_eq!(d.output.image, Some(50));
        assert_eq!(d.tool_use_prompt, Some(40));
    }
}
