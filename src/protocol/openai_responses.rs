//! The OpenAI Responses API (`/v1/responses`).
//!
//! Streams are typed events (`event: response.output_text.delta` …, the same `type` in the
//! data). The model comes with `response.created`; usage, status and error with the terminal
//! event — `response.completed`, `response.incomplete` or `response.failed` — in
//! `response.usage`. Text arrives in `*.delta` events (output text, refusals, reasoning,
//! function-call arguments), which count towards the estimate and the first token. A JSON
//! body is the same `response` object.

use std::borrow::Cow;

use serde::Deserialize;

use super::preamble::{Effect, Preamble};
use super::scan::{Members, Value};
use super::{InBandError, Modalities, Observation, Tracker, Usage, UsageDetails};
use crate::sse::SseEvent;

/// Reads OpenAI Responses API responses.
#[derive(Debug, Default)]
pub(crate) struct OpenAiResponses {
    /// The deltas' repeated preamble (`type`, `sequence_number`, `item_id` …).
    preamble: Preamble<()>,
}

impl Tracker for OpenAiResponses {
    fn on_event(&mut self, event: &SseEvent<'_>, obs: &mut Observation) {
        let data = event.data;
        let typed;
        let name: &[u8] = if event.name.is_empty() {
            // A proxy that dropped the `event:` lines: the type is in the data.
            let Ok(t) = serde_json::from_slice::<Typed<'_>>(data) else {
                return;
            };
            typed = t;
            typed.kind.as_bytes()
        } else {
            event.name
        };
        match name {
            b"response.created" | b"response.in_progress" if obs.model.is_none() => {
                if let Some(model) = plain_model(data) {
                    obs.model = Some(model.to_owned());
                } else if let Ok(e) = serde_json::from_slice::<ResponseEvent<'_>>(data) {
                    obs.model = e.response.model.map(Cow::into_owned);
                }
            }
            b"response.completed" | b"response.incomplete" | b"response.failed" => {
                obs.terminal = true;
                if let Ok(e) = serde_json::from_slice::<ResponseEvent<'_>>(data) {
                    e.response.absorb(obs);
                }
            }
            b"error" => {
                // A stream error precedes `response.failed`, which may say less.
                obs.error = Some(super::error_event(data));
            }
            // Audio deltas are base64, not text.
            b"response.audio.delta" => {}
            n if n.ends_with(b".delta") => {
                let mut chars = 0;
                self.preamble
                    .visit(data, |key, value, _| match (key, value) {
                        (b"delta", Value::Str(t)) => {
                            chars += t.chars();
                            Effect::Varies
                        }
                        _ => Effect::Quiet,
                    });
                obs.output_chars += chars;
                obs.output_started |= chars > 0;
            }
            _ => {}
        }
    }

    fn on_json(&mut self, body: &[u8], obs: &mut Observation) {
        if let Ok(response) = serde_json::from_slice::<Response<'_>>(body) {
            response.absorb(obs);
        }
    }
}

/// The `response.model` of a lifecycle event, read without decoding it when it is a plain
/// string among the members `response` opens with, and no object or array comes before it;
/// `None` sends the event to the decoder.
fn plain_model(data: &[u8]) -> Option<&str> {
    if data.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let mut members = Members::new(data, 0);
    loop {
        let m = members.next()?;
        match (m.key, m.value) {
            (b"response", Value::Object) => break,
            (b"response", _) | (_, Value::Object | Value::Array) => return None,
            _ => {}
        }
    }
    for m in members {
        match (m.key, m.value) {
            (b"model", Value::Str(t)) => return t.plain(),
            (b"model", _) | (_, Value::Object | Value::Array) => return None,
            _ => {}
        }
    }
    None
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ResponseEvent<'a> {
    #[serde(borrow)]
    response: Response<'a>,
}

/// The `response` object (the JSON body, and the payload of the lifecycle events).
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    incomplete_details: Option<IncompleteDetails<'a>>,
    #[serde(default)]
    usage: Option<ResponsesUsage>,
    #[serde(default)]
    error: Option<InBandError>,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    /// The output items; only their types are read (web searches are `web_search_call`).
    #[serde(borrow, default, deserialize_with = "super::null_as_default")]
    output: Vec<OutputItem<'a>>,
}

#[derive(Deserialize)]
struct OutputItem<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IncompleteDetails<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    text_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    image_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    #[serde(default)]
    text_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    image_tokens: Option<u64>,
}

impl Response<'_> {
    fn absorb(self, obs: &mut Observation) {
        if let Some(model) = self.model {
            obs.model = Some(model.into_owned());
        }
        // `completed` is the finish reason of a complete response; an incomplete one says why
        // (`max_output_tokens`, `content_filter`), a failed one says `failed`.
        let reason = self.incomplete_details.and_then(|d| d.reason);
        if let Some(native) = reason.or(self.status.filter(|s| s != "in_progress")) {
            obs.native_finish = Some(native.into_owned());
        }
        if let Some(tier) = self.service_tier {
            obs.service_tier = Some(tier.into_owned());
        }
        if let Some(u) = self.usage {
            let (i, o) = (
                u.input_tokens_details.as_ref(),
                u.output_tokens_details.as_ref(),
            );
            // Every `web_search_call` item is one search (whatever its action), as billed.
            let searches = self
                .output
                .iter()
                .filter(|item| item.kind.as_deref() == Some("web_search_call"))
                .count() as u64;
            obs.usage = Some(Usage {
                input: u.input_tokens,
                output: u.output_tokens,
                cache_read: i.and_then(|d| d.cached_tokens),
                cache_write: None,
                reasoning: o.and_then(|d| d.reasoning_tokens),
                details: UsageDetails {
                    input: Modalities {
                        text: i.and_then(|d| d.text_tokens),
                        audio: i.and_then(|d| d.audio_tokens),
                        image: i.and_then(|d| d.image_tokens),
                        video: None,
                    },
                    output: Modalities {
                        text: o.and_then(|d| d.text_tokens),
                        audio: o.and_then(|d| d.audio_tokens),
                        image: o.and_then(|d| d.image_tokens),
                        video: None,
                    },
                    web_search_requests: (searches > 0).then_some(searches),
                    ..UsageDetails::default()
                },
            });
        }
        if obs.error.is_none() {
            obs.error = self.error.map(InBandError::into_error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::feed;
    use crate::record::FinishReason;

    fn run(events: &[(&str, &str)]) -> Observation {
        feed(&mut OpenAiResponses::default(), events)
    }

    #[test]
    fn incomplete_says_why_and_still_reports_usage() {
        let obs = run(&[
            (
                "response.output_text.delta",
                r#"{"type":"response.output_text.delta","delta":"Hello"}"#,
            ),
            (
                "response.incomplete",
                r#"{"type":"response.incomplete","response":{"model":"gpt-5","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":7,"output_tokens":16,"output_tokens_details":{"reasoning_tokens":16}}}}"#,
            ),
        ]);
        assert!(obs.terminal && obs.output_started);
        assert_eq!(obs.output_chars, 5);
        assert_eq!(obs.native_finish.as_deref(), Some("max_output_tokens"));
        assert_eq!(
            FinishReason::normalise(obs.native_finish.as_deref().unwrap()),
            FinishReason::Length
        );
        assert_eq!(obs.usage.unwrap().reasoning, Some(16));
    }

    #[test]
    fn the_model_is_read_plainly_or_decoded() {
        assert_eq!(
            plain_model(br#"{"type":"response.created","sequence_number":0,"response":{"id":"r","model":"gpt-4o","output":[]}}"#),
            Some("gpt-4o")
        );
        for nested in [
            r#"{"type":"response.created","response":{"metadata":{"model":"x"},"model":"gpt-4o"}}"#,
            r#"{"x":[],"response":{"model":"gpt-4o"}}"#,
            r#"{"response":{"model":"gpt\u002d4o"}}"#,
        ] {
            assert_eq!(plain_model(nested.as_bytes()), None, "{nested}");
            let obs = run(&[("response.created", nested)]);
            assert_eq!(obs.model.as_deref(), Some("gpt-4o"), "{nested}");
        }
    }

    #[test]
    fn events_without_names_are_typed_by_their_data() {
        let obs = run(&[
            (
                "",
                r#"{"type":"response.created","response":{"model":"gpt-4o","status":"in_progress"}}"#,
            ),
            (
                "",
                r#"{"type":"response.reasoning_summary_text.delta","delta":"ab"}"#,
            ),
            (
                "",
                r#"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":1,"output_tokens":2}}}"#,
            ),
        ]);
        assert_eq!(obs.model.as_deref(), Some("gpt-4o"));
        assert_eq!(obs.output_chars, 2);
        assert_eq!(obs.native_finish.as_deref(), Some("completed"));
        assert!(obs.terminal);
    }

    #[test]
    fn the_stream_error_outlives_the_failed_response() {
        let obs = run(&[
            (
                "error",
                r#"{"type":"error","code":"server_error","message":"boom","param":null}"#,
            ),
            (
                "response.failed",
                r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"other","message":"x"}}}"#,
            ),
        ]);
        let e = obs.error.unwrap();
        assert_eq!(
            (e.kind.as_deref(), e.message.as_str()),
            (Some("server_error"), "boom")
        );
        assert_eq!(obs.native_finish.as_deref(), Some("failed"));
    }

    #[test]
    fn audio_deltas_are_not_text() {
        let obs = run(&[("response.audio.delta", r#"{"delta":"AAAAAAAA"}"#)]);
        assert_eq!(obs.output_chars, 0);
    }

    #[test]
    fn web_search_calls_and_the_tier_are_read() {
        let obs = run(&[(
            "response.completed",
            r#"{"type":"response.completed","response":{"model":"gpt-5","status":"completed","service_tier":"flex","output":[{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"q"}},{"type":"reasoning","id":"r"},{"type":"web_search_call","id":"ws_2","status":"completed"},{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2}}}}"#,
        )]);
        assert_eq!(obs.service_tier.as_deref(), Some("flex"));
        let d = obs.usage.unwrap().details;
        assert_eq!(d.web_search_requests, Some(2));
        assert_eq!(d.input.audio, None);
    }
}
