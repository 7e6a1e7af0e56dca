//! OpenAI chat completions and every OpenAI-compatible provider (Groq, Mistral, DeepSeek,
//! OpenRouter …); also legacy `/v1/completions` and `/v1/embeddings`.
//!
//! Streams: `data: {chunk}` events ending in `data: [DONE]`. Usage is the last non-null `usage`
//! of any chunk: its own chunk with `"choices": []` (OpenAI with `include_usage`), or on the
//! finish chunk (Groq, also under `x_groq.usage`; Mistral; DeepSeek), possibly followed by a
//! moderation chunk. An in-band error is a chunk (or an `event: error`) with an `error` object.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use memchr::memmem;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{Reader, Seen};
use super::preamble::{Effect, Preamble, State};
use super::scan::{Members, Value};
use super::{InBandError, Modalities, Observation, StatedCost, Tracker, Usage, UsageDetails};
use crate::buf::{Scratch, keep_spare, take_spare};
use crate::record::{word, word_of};
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

/// The most room, in bytes, a finished stream's preamble may hold in one vector to be kept for
/// the next stream (see [`SPARE`]).
const SPARE_ROOM: usize = 4096;

thread_local! {
    /// The preamble of the last stream that ended on this thread, reset, for the next stream's
    /// first event: a tracker is new for each response, and giving a preamble's vectors their
    /// room (then freeing them) is a fixed cost of every stream. At most one per thread, none
    /// of its vectors holding more than [`SPARE_ROOM`].
    static SPARE: Cell<Option<Preamble<Flags>>> = const { Cell::new(None) };
}

impl Drop for OpenAiChat {
    fn drop(&mut self) {
        // Only a stream's tracker has walked an event (a JSON response's never has).
        keep_spare(&SPARE, &mut self.preamble, SPARE_ROOM);
    }
}

impl OpenAiChat {
    /// The tracker for `/v1/embeddings` (input tokens only; output is a known 0).
    pub(crate) fn embeddings() -> Self {
        OpenAiChat {
            embeddings: true,
            finish_of_first: false,
            preamble: Preamble::default(),
        }
    }

    /// What a chunk says, taken out of it (a chunk is large: it is read and absorbed in
    /// place, not moved).
    fn absorb(&mut self, chunk: &mut Chunk<'_>, obs: &mut Observation) {
        // Most chunks name the model the first one did: kept, not allocated again.
        if let Some(model) = chunk.model.take() {
            if obs.model.as_deref() != Some(&*model) {
                obs.model = Some(model.into_owned());
            }
        }
        if let Some(tier) = chunk.service_tier.take() {
            obs.service_tier = Some(word_of(tier));
        }
        for choice in chunk.first_choice.iter().chain(&chunk.choices) {
            let Some(reason) = &choice.finish_reason else {
                continue;
            };
            // With n > 1 every choice finishes; the record keeps the first choice's reason.
            let first = choice.index.unwrap_or(0) == 0;
            if first || !self.finish_of_first {
                obs.native_finish = Some(word(reason));
                self.finish_of_first |= first;
            }
        }
        let usage = chunk
            .usage
            .as_ref()
            .or_else(|| chunk.x_groq.as_ref().and_then(|g| g.usage.as_ref()));
        if let Some(usage) = usage {
            usage.state_cost(obs);
            obs.usage = Some(usage.normalise(self.embeddings));
        }
        if let Some(error) = chunk.error.take() {
            obs.error = Some(error.into_error());
        }
    }
}

impl Tracker for OpenAiChat {
    fn on_event(&mut self, event: &SseEvent<'_>, obs: &mut Observation) {
        let data = event.data;
        // A chunk opens with its brace: only anything else can be the marker.
        if data.first() != Some(&b'{') && data.trim_ascii() == b"[DONE]" {
            obs.terminal = true;
            return;
        }
        // Chunks of one stream repeat the same preamble: only what follows it is walked.
        if !self.preamble.has_room() {
            // The first event: the room a finished stream's preamble left on this thread.
            if let Some(spare) = take_spare(&SPARE) {
                self.preamble = spare;
            }
        }
        let mut chars = 0;
        let mut text_chars = 0;
        let mut decode = event.name == b"error";
        if obs.model.is_none() {
            // The first chunk is decoded only when its head does not name the model plainly.
            match plain_head(data) {
                Some((model, tier)) => {
                    obs.model = Some(model.to_owned());
                    if let Some(tier) = tier {
                        obs.service_tier = Some(word(tier));
                    }
                }
                None => decode = true,
            }
        }
        let flags = self.preamble.visit(
            data,
            #[inline(always)]
            |key, value, flags| match (key, value) {
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
            },
        );
        let (chat, tool_call) = (flags.chat, flags.tool_call);
        if !chat {
            chars += text_chars;
        }
        obs.output_chars += chars;
        obs.output_started |= chars > 0 || tool_call;
        if decode {
            let mut chunk = Chunk::default();
            if let Some(plain) = decode_chunk(data, &mut chunk) {
                // What the strip's check would say of the chunk when the text is printable
                // ASCII without a backslash, which the strip tests (see `usage_only`).
                if plain {
                    obs.usage_only = Some(chunk.usage_only());
                }
                self.absorb(&mut chunk, obs);
            }
            if event.name == b"error" && obs.error.is_none() {
                obs.error = Some(super::error_event(data));
            }
        }
    }

    fn on_json(&mut self, body: &[u8], obs: &mut Observation) {
        let mut chunk = Chunk::default();
        if decode_chunk(body, &mut chunk).is_some() {
            self.absorb(&mut chunk, obs);
        }
    }
}

/// A stream's chunk or a whole response, read into `chunk` (empty): plainly when it can be
/// (`Some(true)`), else by serde (`Some(false)`). `None` when neither reads it (`chunk` then
/// says nothing).
fn decode_chunk<'a>(json: &'a [u8], chunk: &mut Chunk<'a>) -> Option<bool> {
    if plain_chunk(json, chunk).is_some() {
        return Some(true);
    }
    match serde_json::from_slice::<Chunk<'_>>(json) {
        Ok(decoded) => {
            *chunk = decoded;
            Some(false)
        }
        Err(_) => None,
    }
}

/// A chunk or a whole response read with [`Reader`] when it is written plainly: the chunk serde would
/// decode, for a fraction of the work. `None` for anything else, which serde then decodes —
/// among them OpenRouter's stated cost, Groq's `x_groq` and an in-band error, which the
/// reader leaves to serde rather than repeat its rules. Read into `chunk`, which must be
/// empty (what it holds after a `None` is to be dropped).
fn plain_chunk<'a>(body: &'a [u8], chunk: &mut Chunk<'a>) -> Option<()> {
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
            chunk.choices_array = true;
            // The first choice (most responses' only one) is kept without a vector.
            r.array(|r| {
                let choice = plain_choice(r)?;
                match chunk.first_choice {
                    None => chunk.first_choice = Some(choice),
                    Some(_) => chunk.choices.push(choice),
                }
                Some(())
            })
        }
        b"usage" => {
            seen.first(3)?;
            if !r.null() {
                plain_usage(r, chunk.usage.insert(ChatUsage::default()))?;
            }
            Some(())
        }
        b"x_groq" | b"error" => None,
        _ => r.skip(),
    })?;
    r.end()
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
fn plain_usage<'a>(r: &mut Reader<'a>, u: &mut ChatUsage<'a>) -> Option<()> {
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
                if let Some([cached, cache_write, text, audio, image, video]) = r.opt_counts([
                    b"cached_tokens",
                    b"cache_write_tokens",
                    b"text_tokens",
                    b"audio_tokens",
                    b"image_tokens",
                    b"video_tokens",
                ])? {
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
                if let Some([reasoning, text, audio, image]) = r.opt_counts([
                    b"reasoning_tokens",
                    b"text_tokens",
                    b"audio_tokens",
                    b"image_tokens",
                ])? {
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
    })
}

/// Finds `"service_tier"`; built once (`memmem::find` builds a finder per call, which cost
/// more than the search of a stream's first chunk).
static SERVICE_TIER_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"service_tier\""));

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
    if SERVICE_TIER_KEY.find(&data[nested..]).is_some() {
        return None;
    }
    Some((model?, tier))
}

/// A chunk of a stream, or a whole (non-streamed) response: both have these members.
#[derive(Default, Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    /// The first of the choices, when [`plain_chunk`] read them (serde puts them all in
    /// `choices`): they are `first_choice`, then `choices`.
    #[serde(skip)]
    first_choice: Option<Choice<'a>>,
    #[serde(borrow, default, deserialize_with = "super::null_as_default")]
    choices: Vec<Choice<'a>>,
    /// [`plain_chunk`] read `choices` as an array (not `null`, not missing).
    #[serde(skip)]
    choices_array: bool,
    #[serde(borrow, default)]
    usage: Option<ChatUsage<'a>>,
    #[serde(borrow, default)]
    x_groq: Option<XGroq<'a>>,
    #[serde(default)]
    error: Option<InBandError>,
}

impl Chunk<'_> {
    /// Read by [`plain_chunk`]: whether it is the usage-only chunk (`choices` an empty array,
    /// `usage` there and not null).
    fn usage_only(&self) -> bool {
        self.usage.is_some()
            && self.choices_array
            && self.first_choice.is_none()
            && self.choices.is_empty()
    }
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

#[derive(Default, Deserialize)]
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
mod tests;
