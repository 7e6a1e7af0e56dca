//! Anthropic Messages (`/v1/messages`).
//!
//! Streams: `message_start` names the model and the usage so far (input, cache reads and
//! writes, and 1 output token), each `content_block_delta` carries text, thinking or tool-input
//! JSON, `message_delta` the stop reason and the final usage, `message_stop` ends the message.
//! Usage counts are cumulative: every non-null field of a later usage overwrites the earlier
//! one, nothing is summed. `input_tokens` here excludes the cache, so the record's input is
//! `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`.

use std::borrow::Cow;

use serde::Deserialize;

use super::preamble::{Effect, Preamble};
use super::scan::Value;
use super::{Observation, Tracker, Usage, UsageDetails};
use crate::record::word_of;
use crate::sse::SseEvent;

/// Reads Anthropic Messages responses.
#[derive(Debug, Default)]
pub(crate) struct Anthropic {
    /// The usage fields as last reported (each overwritten only by a non-null value).
    usage: RawUsage,
    /// The deltas' repeated preamble (`{"type":"content_block_delta","index":0,"delta":{…`).
    preamble: Preamble<()>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct RawUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    /// The cache writes by lifetime (absent: all 5-minute).
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
    #[serde(default)]
    server_tool_use: Option<ServerToolUse>,
    #[serde(default)]
    service_tier: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct ServerToolUse {
    #[serde(default)]
    web_search_requests: Option<u64>,
    #[serde(default)]
    web_fetch_requests: Option<u64>,
}

impl Anthropic {
    fn absorb_usage(&mut self, update: RawUsage, obs: &mut Observation) {
        if let Some(tier) = update.service_tier {
            obs.service_tier = Some(word_of(tier.into()));
        }
        let u = &mut self.usage;
        u.input_tokens = update.input_tokens.or(u.input_tokens);
        u.cache_creation_input_tokens = update
            .cache_creation_input_tokens
            .or(u.cache_creation_input_tokens);
        u.cache_read_input_tokens = update.cache_read_input_tokens.or(u.cache_read_input_tokens);
        u.output_tokens = update.output_tokens.or(u.output_tokens);
        if let Some(c) = update.cache_creation {
            let old = u.cache_creation.get_or_insert_default();
            old.ephemeral_5m_input_tokens = c
                .ephemeral_5m_input_tokens
                .or(old.ephemeral_5m_input_tokens);
            old.ephemeral_1h_input_tokens = c
                .ephemeral_1h_input_tokens
                .or(old.ephemeral_1h_input_tokens);
        }
        if let Some(t) = update.server_tool_use {
            let old = u.server_tool_use.get_or_insert_default();
            old.web_search_requests = t.web_search_requests.or(old.web_search_requests);
            old.web_fetch_requests = t.web_fetch_requests.or(old.web_fetch_requests);
        }
        let cache = u.cache_creation.unwrap_or_default();
        let tools = u.server_tool_use.unwrap_or_default();
        obs.usage = Some(Usage {
            input: u.input_tokens.map(|i| {
                i.saturating_add(u.cache_creation_input_tokens.unwrap_or(0))
                    .saturating_add(u.cache_read_input_tokens.unwrap_or(0))
            }),
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_creation_input_tokens,
            reasoning: None,
            details: UsageDetails {
                cache_write_5m: cache.ephemeral_5m_input_tokens,
                cache_write_1h: cache.ephemeral_1h_input_tokens,
                web_search_requests: tools.web_search_requests,
                web_fetch_requests: tools.web_fetch_requests,
                ..UsageDetails::default()
            },
        });
    }

    fn absorb_message(&mut self, message: Message<'_>, obs: &mut Observation) {
        if let Some(model) = message.model {
            obs.model = Some(model.into_owned());
        }
        if let Some(reason) = message.stop_reason {
            obs.native_finish = Some(word_of(reason));
        }
        if let Some(usage) = message.usage {
            self.absorb_usage(usage, obs);
        }
    }
}

impl Tracker for Anthropic {
    fn on_event(&mut self, event: &SseEvent<'_>, obs: &mut Observation) {
        let data = event.data;
        let typed;
        let name: &[u8] = if event.name.is_empty() {
            let Ok(t) = serde_json::from_slice::<Typed<'_>>(data) else {
                return;
            };
            typed = t;
            typed.kind.as_bytes()
        } else {
            event.name
        };
        match name {
            b"content_block_delta" => {
                let mut chars = 0;
                // Text, thinking and tool input are generated; signatures and citations are not.
                self.preamble.visit(
                    data,
                    #[inline(always)]
                    |key, value, _| match (key, value) {
                        (b"text" | b"thinking" | b"partial_json", Value::Str(t)) => {
                            chars += t.chars();
                            Effect::Varies
                        }
                        _ => Effect::Quiet,
                    },
                );
                obs.output_chars += chars;
                obs.output_started |= chars > 0;
            }
            b"message_start" => {
                if let Ok(e) = serde_json::from_slice::<MessageStart<'_>>(data) {
                    self.absorb_message(e.message, obs);
                }
            }
            b"message_delta" => {
                if let Ok(e) = serde_json::from_slice::<MessageDelta<'_>>(data) {
                    if let Some(reason) = e.delta.and_then(|d| d.stop_reason) {
                        obs.native_finish = Some(word_of(reason));
                    }
                    if let Some(usage) = e.usage {
                        self.absorb_usage(usage, obs);
                    }
                }
            }
            b"message_stop" => obs.terminal = true,
            b"error" => obs.error = Some(super::error_event(data)),
            _ => {}
        }
    }

    fn on_json(&mut self, body: &[u8], obs: &mut Observation) {
        if let Ok(message) = serde_json::from_slice::<Message<'_>>(body) {
            self.absorb_message(message, obs);
        }
    }
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// A message: the JSON body, and the payload of `message_start`.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: Message<'a>,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow, default)]
    delta: Option<StopDelta<'a>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct StopDelta<'a> {
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::feed;

    fn run(events: &[(&str, &str)]) -> Observation {
        feed(&mut Anthropic::default(), events)
    }

    #[test]
    fn later_usage_fields_overwrite_and_are_never_summed() {
        let obs = run(&[
            (
                "message_start",
                r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":1}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"c2ln"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":42}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        let u = obs.usage.unwrap();
        assert_eq!(u.input, Some(115));
        assert_eq!((u.cache_read, u.cache_write), (Some(100), Some(5)));
        assert_eq!(u.output, Some(42));
        assert_eq!(obs.output_chars, 3);
        assert_eq!(obs.native_finish.as_deref(), Some("tool_use"));
        assert!(obs.terminal);
    }

    #[test]
    fn overloaded_error_event() {
        let obs = run(&[(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )]);
        assert_eq!(obs.error.unwrap().kind.as_deref(), Some("overloaded_error"));
    }

    #[test]
    fn events_without_names_are_typed_by_their_data() {
        let obs = run(&[
            (
                "",
                r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"hey"}}"#,
            ),
            ("", r#"{"type":"message_stop"}"#),
        ]);
        assert_eq!(obs.output_chars, 3);
        assert!(obs.terminal);
    }

    #[test]
    fn cache_lifetimes_server_tools_and_the_tier_are_read_and_overwritten() {
        let obs = run(&[
            (
                "message_start",
                r#"{"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":3,"cache_creation_input_tokens":2000,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":500,"ephemeral_1h_input_tokens":1500},"output_tokens":1,"service_tier":"standard"}}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":100,"server_tool_use":{"web_search_requests":3}}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        assert_eq!(obs.service_tier.as_deref(), Some("standard"));
        let u = obs.usage.unwrap();
        assert_eq!(
            (u.input, u.cache_write, u.output),
            (Some(2003), Some(2000), Some(100))
        );
        let d = u.details;
        assert_eq!(
            (d.cache_write_5m, d.cache_write_1h),
            (Some(500), Some(1500))
        );
        assert_eq!(
            (d.web_search_requests, d.web_fetch_requests),
            (Some(3), None)
        );
    }
}
