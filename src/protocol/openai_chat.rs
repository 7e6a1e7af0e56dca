//! OpenAI chat completions and every OpenAI-compatible provider (Groq, Mistral, DeepSeek,
//! OpenRouter …); also legacy `/v1/completions` and `/v1/embeddings`.
//!
//! Streams: `data: {chunk}` events ending in `data: [DONE]`. Usage is the last non-null `usage`
//! of any chunk: its own chunk with `"choices": []` (OpenAI with `include_usage`), or on the
//! finish chunk (Groq, also under `x_groq.usage`; Mistral; DeepSeek), possibly followed by a
//! moderation chunk. An in-band error is a chunk (or an `event: error`) with an `error` object.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{Reader, Seen};
use super::preamble::{Effect, Preamble, State};
use super::scan::{Members, Value};
use super::{InBandError, Modalities, Observation, StatedCost, Tracker, Usage, UsageDetails};
use crate::sse::SseEvent;

/// Reads OpenAI chat (and compatible) responses.
#[derive(Debug, Default)]
pub(crate) struct OpenAiChat {
    /// `/v1/embeddings`: the output is a known 0.
    embeddings: bool,
    /// The finish reason came from choice 0 (other choices no longer overwrite it).
    finish_of_first: bool,
    /// The stream's repeated preamble (`id`, `object`, `created`, `model`, up to the delta's
    /// first counted member), and the flags its members set.
    preamble: Preamble<Flags>,
}

/// What the members of a chunk's preamble say, whatever their values.
#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    /// A `delta` member: a chat chunk (its `text` members are not legacy completion text).
    chat: bool,
    /// A `tool_calls` array: a tool call has started.
    tool_call: bool,
}

impl State for Flags {
    fn then(&mut self, later: &Self) {
        self.chat |= later.chat;
        self.tool_call |= later.tool_call;
    }
}

impl OpenAiChat {
    /// The tracker for `/v1/embeddings` (input tokens only; output is a known 0).
    pub(crate) fn embeddings() -> Self {
        OpenAiChat {
            embeddings: true,
            ..OpenAiChat::default()
        }
    }

    fn absorb(&mut self, chunk: Chunk<'_>, obs: &mut Observation) {
        if let Some(model) = chunk.model {
            obs.model = Some(model.into_owned());
        }
        if let Some(tier) = chunk.service_tier {
            obs.service_tier = Some(tier.into_owned());
        }
        for choice in &chunk.choices {
            let Some(reason) = &choice.finish_reason else {
                continue;
            };
            // With n > 1 every choice finishes; the record keeps the first choice's reason.
            let first = choice.index.unwrap_or(0) == 0;
            if first || !self.finish_of_first {
                obs.native_finish = Some(reason.clone().into_owned());
                self.finish_of_first |= first;
            }
        }
        if let Some(usage) = chunk.usage.or_else(|| chunk.x_groq.and_then(|g| g.usage)) {
            usage.state_cost(obs);
            obs.usage = Some(usage.normalise(self.embeddings));
        }
        if let Some(error) = chunk.error {
            obs.error = Some(error.into_error());
        }
    }
}

impl Tracker for OpenAiChat {
    fn on_event(&mut self, event: &SseEvent<'_>, obs: &mut Observation) {
        let data = event.data;
        if data.trim_ascii() == b"[DONE]" {
            obs.terminal = true;
            return;
        }
        // Chunks of one stream repeat the same preamble: only what follows it is walked.
        let mut chars = 0;
        let mut text_chars = 0;
        let mut decode = event.name == b"error";
        if obs.model.is_none() {
            // The first chunk is decoded only when its head does not name the model plainly.
            match plain_head(data) {
                Some((model, tier)) => {
                    obs.model = Some(model.to_owned());
                    if let Some(tier) = tier {
                        obs.service_tier = Some(tier.to_owned());
                    }
                }
                None => decode = true,
            }
        }
        let flags = self
            .preamble
            .visit(data, |key, value, flags| match (key, value) {
                (
                    b"content" | b"reasoning_content" | b"reasoning" | b"refusal" | b"arguments",
                    Value::Str(t),
                ) => {
                    chars += t.chars();
                    Effect::Varies
                }
                // Legacy completions stream `choices[].text`; chat chunks (which may carry
                // OpenRouter's `reasoning_details[].text` copies) have a `delta`.
                (b"text", Value::Str(t)) => {
                    text_chars += t.chars();
                    Effect::Varies
                }
                (b"delta", _) => {
                    flags.chat = true;
                    Effect::Constant
                }
                (b"tool_calls", Value::Array) => {
                    flags.tool_call = true;
                    Effect::Constant
                }
                (b"usage" | b"error", Value::Object | Value::Str(_))
                | (b"finish_reason", Value::Str(_)) => {
                    decode = true;
                    Effect::Varies
                }
                _ => Effect::Quiet,
            });
        let (chat, tool_call) = (flags.chat, flags.tool_call);
        if !chat {
            chars += text_chars;
        }
        obs.output_chars += chars;
        obs.output_started |= chars > 0 || tool_call;
        if decode {
            if let Some(chunk) = decode_chunk(data) {
                self.absorb(chunk, obs);
            }
            if event.name == b"error" && obs.error.is_none() {
                obs.error = Some(super::error_event(data));
            }
        }
    }

    fn on_json(&mut self, body: &[u8], obs: &mut Observation) {
        if let Some(chunk) = decode_chunk(body) {
            self.absorb(chunk, obs);
        }
    }
}

/// A stream's chunk or a whole response: read plainly when it can be, else by serde.
fn decode_chunk(json: &[u8]) -> Option<Chunk<'_>> {
    plain_chunk(json).or_else(|| serde_json::from_slice::<Chunk<'_>>(json).ok())
}

/// A chunk or a whole response read with [`Reader`] when it is written plainly: the chunk serde would
/// decode, for a fraction of the work. `None` for anything else, which serde then decodes —
/// among them OpenRouter's stated cost, Groq's `x_groq` and an in-band error, which the
/// reader leaves to serde rather than repeat its rules.
fn plain_chunk(body: &[u8]) -> Option<Chunk<'_>> {
    let mut chunk = Chunk {
        model: None,
        service_tier: None,
        choices: Vec::new(),
        usage: None,
        x_groq: None,
        error: None,
    };
    let mut seen = Seen::default();
    let mut r = Reader::new(body);
    r.object(|r, key| match key {
        b"model" => {
            seen.first(0)?;
            chunk.model = r.opt_str()?.map(Cow::Borrowed);
            Some(())
        }
        b"service_tier" => {
            seen.first(1)?;
            chunk.service_tier = r.opt_str()?.map(Cow::Borrowed);
            Some(())
        }
        b"choices" => {
            seen.first(2)?;
            if r.null() {
                return Some(());
            }
            r.array(|r| plain_choice(r).map(|c| chunk.choices.push(c)))
        }
        b"usage" => {
            seen.first(3)?;
            if !r.null() {
                chunk.usage = Some(plain_usage(r)?);
            }
            Some(())
        }
        b"x_groq" | b"error" => None,
        _ => r.skip(),
    })?;
    r.end()?;
    Some(chunk)
}

fn plain_choice<'a>(r: &mut Reader<'a>) -> Option<Choice<'a>> {
    let mut choice = Choice {
        index: None,
        finish_reason: None,
    };
    let mut seen = Seen::default();
    r.object(|r, key| match key {
        b"index" => {
            seen.first(0)?;
            choice.index = r.opt_u64()?;
            Some(())
        }
        b"finish_reason" => {
            seen.first(1)?;
            choice.finish_reason = r.opt_str()?.map(Cow::Borrowed);
            Some(())
        }
        _ => r.skip(),
    })?;
    Some(choice)
}

/// A `usage` of token counts only; a stated cost (`cost`, `is_byok`, `cost_details`) is left
/// to serde.
fn plain_usage<'a>(r: &mut Reader<'a>) -> Option<ChatUsage<'a>> {
    let mut u = ChatUsage {
        prompt_tokens: None,
        completion_tokens: None,
        prompt_tokens_details: None,
        completion_tokens_details: None,
        prompt_cache_hit_tokens: None,
        cost: None,
        is_byok: None,
        cost_details: None,
    };
    let mut seen = Seen::default();
    r.object(|r, key| {
        match key {
            b"prompt_tokens" => {
                seen.first(0)?;
                u.prompt_tokens = r.opt_u64()?;
            }
            b"completion_tokens" => {
                seen.first(1)?;
                u.completion_tokens = r.opt_u64()?;
            }
            b"prompt_cache_hit_tokens" => {
                seen.first(2)?;
                u.prompt_cache_hit_tokens = r.opt_u64()?;
            }
            b"prompt_tokens_details" => {
                seen.first(3)?;
                if !r.null() {
                    let [cached, cache_write, text, audio, image, video] = r.counts([
                        b"cached_tokens",
                        b"cache_write_tokens",
                        b"text_tokens",
                        b"audio_tokens",
                        b"image_tokens",
                        b"video_tokens",
                    ])?;
                    u.prompt_tokens_details = Some(PromptDetails {
                        cached_tokens: cached,
                        cache_write_tokens: cache_write,
                        text_tokens: text,
                        audio_tokens: audio,
                        image_tokens: image,
                        video_tokens: video,
                    });
                }
            }
            b"completion_tokens_details" => {
                seen.first(4)?;
                if !r.null() {
                    let [reasoning, text, audio, image] = r.counts([
                        b"reasoning_tokens",
                        b"text_tokens",
                        b"audio_tokens",
                        b"image_tokens",
                    ])?;
                    u.completion_tokens_details = Some(CompletionDetails {
                        reasoning_tokens: reasoning,
                        text_tokens: text,
                        audio_tokens: audio,
                        image_tokens: image,
                    });
                }
            }
            b"cost" | b"is_byok" | b"cost_details" => return None,
            _ => return r.skip(),
        }
        Some(())
    })?;
    Some(u)
}

/// The `model` and `service_tier` a decoded chunk would give, read from the members before its
/// first object or array (which are top-level ones): `None` unless the model is there, both
/// are plain strings, neither comes twice, and no `service_tier` follows further on — then the
/// chunk is decoded.
fn plain_head(data: &[u8]) -> Option<(&str, Option<&str>)> {
    if data.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let (mut model, mut tier) = (None, None);
    let mut nested = data.len();
    for m in Members::new(data, 0) {
        match (m.key, m.value) {
            (_, Value::Object | Value::Array) => {
                nested = m.value_at;
                break;
            }
            (b"model", Value::Str(t)) if model.is_none() => model = Some(t.plain()?),
            (b"service_tier", Value::Str(t)) if tier.is_none() => tier = Some(t.plain()?),
            (b"model" | b"service_tier", _) => return None,
            _ => {}
        }
    }
    if memchr::memmem::find(&data[nested..], b"\"service_tier\"").is_some() {
        return None;
    }
    Some((model?, tier))
}

/// A chunk of a stream, or a whole (non-streamed) response: both have these members.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::null_as_default")]
    choices: Vec<Choice<'a>>,
    #[serde(borrow, default)]
    usage: Option<ChatUsage<'a>>,
    #[serde(borrow, default)]
    x_groq: Option<XGroq<'a>>,
    #[serde(default)]
    error: Option<InBandError>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct XGroq<'a> {
    #[serde(borrow, default)]
    usage: Option<ChatUsage<'a>>,
}

#[derive(Deserialize)]
struct ChatUsage<'a> {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's name for cache reads.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    /// OpenRouter's statement of its charge, kept verbatim (never through a float).
    #[serde(borrow, default)]
    cost: Option<&'a RawValue>,
    #[serde(default)]
    is_byok: Option<bool>,
    #[serde(borrow, default)]
    cost_details: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
}

#[derive(Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
    #[serde(default)]
    text_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    image_tokens: Option<u64>,
    #[serde(default)]
    video_tokens: Option<u64>,
}

#[derive(Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    #[serde(default)]
    text_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    image_tokens: Option<u64>,
}

impl ChatUsage<'_> {
    fn normalise(&self, embeddings: bool) -> Usage {
        let prompt = self.prompt_tokens_details.as_ref();
        let completion = self.completion_tokens_details.as_ref();
        Usage {
            input: self.prompt_tokens,
            output: self.completion_tokens.or(embeddings.then_some(0)),
            cache_read: prompt
                .and_then(|p| p.cached_tokens)
                .or(self.prompt_cache_hit_tokens),
            cache_write: prompt.and_then(|p| p.cache_write_tokens),
            reasoning: completion.and_then(|c| c.reasoning_tokens),
            details: UsageDetails {
                input: Modalities {
                    text: prompt.and_then(|p| p.text_tokens),
                    audio: prompt.and_then(|p| p.audio_tokens),
                    image: prompt.and_then(|p| p.image_tokens),
                    video: prompt.and_then(|p| p.video_tokens),
                },
                output: Modalities {
                    text: completion.and_then(|c| c.text_tokens),
                    audio: completion.and_then(|c| c.audio_tokens),
                    image: completion.and_then(|c| c.image_tokens),
                    video: None,
                },
                ..UsageDetails::default()
            },
        }
    }

    /// OpenRouter's `cost` (and `cost_details`, `is_byok`): the stated charge, and the raw
    /// figures in `metadata` (`provider_cost_usd`, `provider_cost_details`).
    fn state_cost(&self, obs: &mut Observation) {
        let Some(cost) = self.cost.filter(|c| is_number(c)) else {
            return;
        };
        obs.notes
            .insert("provider_cost_usd".into(), cost.get().into());
        let details = self.cost_details.as_ref();
        if let Some(details) = details {
            let verbatim: serde_json::Map<String, serde_json::Value> = details
                .iter()
                .map(|(k, v)| {
                    let v = if is_number(v) {
                        v.get().into()
                    } else {
                        serde_json::Value::Null
                    };
                    (k.clone().into_owned(), v)
                })
                .collect();
            obs.notes
                .insert("provider_cost_details".into(), verbatim.into());
        }
        obs.stated_cost = Some(StatedCost {
            cost: cost.get().to_owned(),
            upstream: details
                .and_then(|d| d.get("upstream_inference_cost"))
                .filter(|v| is_number(v))
                .map(|v| v.get().to_owned()),
            byok: self.is_byok == Some(true),
        });
    }
}

/// Whether a JSON value's text is a number (not `null`, a string …).
fn is_number(raw: &RawValue) -> bool {
    raw.get()
        .starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
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
        let pre =
            r#"{"id":"c","object":"chat.completion.chunk","created":9,"model":"m","choices":["#;
        let obs = stream(&[
            &format!(r#"{pre}{{"index":0,"delta":{{"content":"ab"}}}}]}}"#),
            &format!(r#"{pre}{{"index":0,"delta":{{"content":"cde"}}}}]}}"#),
            &format!(r#"{pre}{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}"#),
        ]);
        assert_eq!(obs.output_chars, 5);
        assert_eq!(obs.native_finish.as_deref(), Some("stop"));

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
                prop_oneof![details, Just("null".to_owned())]
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
            prop::collection::vec(choice, 0..3)
                .prop_map(|c| format!(r#""choices":[{}]"#, c.join(","))),
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
                if let Some(chunk) = chunk {
                    OpenAiChat::default().absorb(chunk, &mut obs);
                }
                format!("{obs:?}")
            };
            let serde = serde_json::from_slice::<Chunk<'_>>(body.as_bytes()).ok();
            let serde_read = serde.is_some();
            let serde = observe(serde);
            if let Some(plain) = plain_chunk(body.as_bytes()) {
                prop_assert!(serde_read, "serde refused {}", body);
                prop_assert_eq!(observe(Some(plain)), serde, "{}", body);
            }
        }
    }

    #[test]
    fn the_plain_reader_takes_the_common_response() {
        let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\""},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":null}"#;
        assert!(plain_chunk(body).is_some());
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
}
