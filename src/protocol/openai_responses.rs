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

use super::json::{Reader, Seen};
use super::preamble::{Effect, Preamble};
use super::scan::{Members, Value};
use super::{InBandError, Modalities, Observation, Tracker, Usage, UsageDetails};
use crate::record::word_of;
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
                if let Some(response) = decode_event(data) {
                    response.absorb(obs);
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
                self.preamble.visit(
                    data,
                    #[inline(always)]
                    |key, value, _| match (key, value) {
                        (b"delta", Value::Str(t)) => {
                            chars += t.chars();
                            Effect::Varies
                        }
                        _ => Effect::Quiet,
                    },
                );
                obs.output_chars += chars;
                obs.output_started |= chars > 0;
            }
            _ => {}
        }
    }

    fn on_json(&mut self, body: &[u8], obs: &mut Observation) {
        let mut r = Reader::new(body);
        let plain = plain_response(&mut r).filter(|_| r.end().is_some());
        if let Some(response) = plain.or_else(|| serde_json::from_slice(body).ok()) {
            response.absorb(obs);
        }
    }
}

/// The `response` of a lifecycle event: read plainly when it can be, else by serde.
fn decode_event(data: &[u8]) -> Option<Response<'_>> {
    plain_event(data).or_else(|| {
        serde_json::from_slice::<ResponseEvent<'_>>(data)
            .ok()
            .map(|e| e.response)
    })
}

/// A lifecycle event's `response`, read with [`Reader`] when it is written plainly: what
/// serde would decode, for a fraction of the work. `None` for anything else (an escape where a
/// value is read, a number of another shape, a member twice, an `error` that is not `null`
/// …), which serde then decodes.
fn plain_event(data: &[u8]) -> Option<Response<'_>> {
    let mut response = None;
    let mut r = Reader::new(data);
    r.object(|r, key| match key {
        b"response" if response.is_none() => plain_response(r).map(|p| response = Some(p)),
        b"response" => None,
        _ => r.skip(),
    })?;
    r.end()?;
    response
}

/// The `response` object at the reader (see [`plain_event`]).
fn plain_response<'a>(r: &mut Reader<'a>) -> Option<Response<'a>> {
    let mut p = Response {
        model: None,
        status: None,
        incomplete_details: None,
        usage: None,
        error: None,
        service_tier: None,
        output: Vec::new(),
    };
    let mut seen = Seen::default();
    r.object(|r, key| {
        let str_slot = match key {
            b"model" => Some((0, &mut p.model)),
            b"status" => Some((1, &mut p.status)),
            b"service_tier" => Some((2, &mut p.service_tier)),
            _ => None,
        };
        if let Some((bit, slot)) = str_slot {
            seen.first(bit)?;
            *slot = r.opt_str()?.map(Cow::Borrowed);
            return Some(());
        }
        match key {
            b"incomplete_details" => {
                seen.first(3)?;
                if !r.null() {
                    let reason = plain_member_str(r, b"reason")?;
                    p.incomplete_details = Some(IncompleteDetails { reason });
                }
                Some(())
            }
            b"usage" => {
                seen.first(4)?;
                if !r.null() {
                    p.usage = Some(plain_usage(r)?);
                }
                Some(())
            }
            // An error is left to serde; `null` says there is none.
            b"error" => {
                seen.first(5)?;
                r.null().then_some(())
            }
            b"output" => {
                seen.first(6)?;
                if r.null() {
                    return Some(());
                }
                r.array(|r| {
                    let kind = plain_member_str(r, b"type")?;
                    p.output.push(OutputItem { kind });
                    Some(())
                })
            }
            _ => r.skip(),
        }
    })?;
    Some(p)
}

/// The string (or `null`) under `name` in the object at the reader, its other members skipped.
fn plain_member_str<'a>(r: &mut Reader<'a>, name: &[u8]) -> Option<Option<Cow<'a, str>>> {
    let mut value = None;
    let mut seen = Seen::default();
    r.object(|r, key| {
        if key != name {
            return r.skip();
        }
        seen.first(0)?;
        value = r.opt_str()?.map(Cow::Borrowed);
        Some(())
    })?;
    Some(value)
}

/// A `usage` object at the reader, its counts written plainly.
fn plain_usage(r: &mut Reader<'_>) -> Option<ResponsesUsage> {
    let mut u = ResponsesUsage {
        input_tokens: None,
        input_tokens_details: None,
        output_tokens: None,
        output_tokens_details: None,
    };
    let mut seen = Seen::default();
    r.object(|r, key| match key {
        b"input_tokens" => {
            seen.first(0)?;
            u.input_tokens = r.opt_u64()?;
            Some(())
        }
        b"output_tokens" => {
            seen.first(1)?;
            u.output_tokens = r.opt_u64()?;
            Some(())
        }
        b"input_tokens_details" => {
            seen.first(2)?;
            if !r.null() {
                let [cached, text, audio, image] = r.counts([
                    b"cached_tokens",
                    b"text_tokens",
                    b"audio_tokens",
                    b"image_tokens",
                ])?;
                let d = InputDetails {
                    cached_tokens: cached,
                    text_tokens: text,
                    audio_tokens: audio,
                    image_tokens: image,
                };
                u.input_tokens_details = Some(d);
            }
            Some(())
        }
        b"output_tokens_details" => {
            seen.first(3)?;
            if !r.null() {
                let [reasoning, text, audio, image] = r.counts([
                    b"reasoning_tokens",
                    b"text_tokens",
                    b"audio_tokens",
                    b"image_tokens",
                ])?;
                let d = OutputDetails {
                    reasoning_tokens: reasoning,
                    text_tokens: text,
                    audio_tokens: audio,
                    image_tokens: image,
                };
                u.output_tokens_details = Some(d);
            }
            Some(())
        }
        _ => r.skip(),
    })?;
    Some(u)
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
            obs.native_finish = Some(word_of(native));
        }
        if let Some(tier) = self.service_tier {
            obs.service_tier = Some(word_of(tier));
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
    use proptest::prelude::*;

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

    /// A member of a `response` object, as providers (and odd ones) write it.
    fn member() -> impl Strategy<Value = String> {
        let count = prop_oneof![
            Just("7"),
            Just("0"),
            Just("null"),
            Just("-1"),
            Just("2.0"),
            Just("\"3\""),
            Just("18446744073709551616"),
        ];
        let text = prop_oneof![
            Just(r#""gpt-4o""#),
            Just(r#""completed""#),
            Just(r#""in_progress""#),
            Just(r#""a\"b""#),
            Just(r#""\u0041""#),
            Just("null"),
            Just("5"),
        ];
        let details = prop::collection::vec(
            (
                prop::sample::select(vec![
                    "cached_tokens",
                    "reasoning_tokens",
                    "text_tokens",
                    "audio_tokens",
                    "image_tokens",
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
                prop::sample::select(vec!["input_tokens", "output_tokens", "total_tokens"]),
                count
            )
                .prop_map(|(k, v)| format!(r#""{k}":{v}"#)),
            (
                prop::sample::select(vec!["input_tokens_details", "output_tokens_details"]),
                prop_oneof![details, Just("null".to_owned())]
            )
                .prop_map(|(k, v)| format!(r#""{k}":{v}"#)),
        ];
        let usage = prop::collection::vec(usage_member, 0..5)
            .prop_map(|m| format!(r#""usage":{{{}}}"#, m.join(",")));
        let item = text
            .clone()
            .prop_map(|t| format!(r#"{{"type":{t},"id":"x","content":[{{"text":"q\"r"}}]}}"#));
        prop_oneof![
            (
                prop::sample::select(vec!["model", "status", "service_tier"]),
                text.clone()
            )
                .prop_map(|(k, t)| format!(r#""{k}" : {t}"#)),
            text.prop_map(|t| format!(r#""incomplete_details":{{"reason":{t}}}"#)),
            Just(r#""incomplete_details":null"#.to_owned()),
            usage,
            Just(r#""usage":null"#.to_owned()),
            prop::collection::vec(item, 0..3)
                .prop_map(|c| format!(r#""output":[{}]"#, c.join(","))),
            Just(r#""output":null"#.to_owned()),
            Just(r#""output":{}"#.to_owned()),
            Just(r#""error":null"#.to_owned()),
            Just(r#""error":{"code":"server_error","message":"m"}"#.to_owned()),
            Just(r#""id":"resp_1","created_at":1,"tools":[1,{"a":[true,false,null]}]"#.to_owned()),
            Just(r#""mod\u0065l":"escaped-key""#.to_owned()),
        ]
    }

    proptest! {
        /// For every event (and body) the plain reader accepts, the observation is the one
        /// serde's decoding gives; the ones it gives up on are decoded by serde.
        #[test]
        fn the_plain_reader_reads_what_serde_reads(
            members in prop::collection::vec(member(), 0..7),
            spaced in any::<bool>(),
            wrap in prop_oneof![
                Just(r#"{"type":"response.completed","response":"#),
                Just(r#"{"response":"#),
                Just(r#"{"sequence_number":1, "response" :"#),
            ],
            tail in prop_oneof![Just("}"), Just(r#","response":{}}"#), Just("} x"), Just("")],
        ) {
            let sep = if spaced { " ,\n " } else { "," };
            let response = format!("{{{}}}", members.join(sep));
            let event = format!("{wrap}{response}{tail}");
            let observe = |r: Option<Response<'_>>| {
                let mut obs = Observation::default();
                if let Some(r) = r {
                    r.absorb(&mut obs);
                }
                format!("{obs:?}")
            };
            let serde = serde_json::from_slice::<ResponseEvent<'_>>(event.as_bytes()).ok();
            let serde_read = serde.is_some();
            let serde = observe(serde.map(|e| e.response));
            if let Some(plain) = plain_event(event.as_bytes()) {
                prop_assert!(serde_read, "serde refused {}", event);
                prop_assert_eq!(observe(Some(plain)), serde, "{}", event);
            }
            // The body reader takes the `response` object alone.
            let serde = serde_json::from_slice::<Response<'_>>(response.as_bytes()).ok();
            let serde_read = serde.is_some();
            let serde = observe(serde);
            let mut r = Reader::new(response.as_bytes());
            if let Some(plain) = plain_response(&mut r).filter(|_| r.end().is_some()) {
                prop_assert!(serde_read, "serde refused {}", response);
                prop_assert_eq!(observe(Some(plain)), serde, "{}", response);
            }
        }
    }

    #[test]
    fn the_plain_reader_takes_the_common_terminal_event() {
        let event = br#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","created_at":1,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-4o-2024-08-06","output":[{"type":"message","id":"m","content":[{"type":"output_text","text":"Hi \"x\""}]}],"service_tier":"default","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":15}}}"#;
        let plain = plain_event(event).expect("read plainly");
        let mut obs = Observation::default();
        plain.absorb(&mut obs);
        let u = obs.usage.unwrap();
        assert_eq!(
            (u.input, u.output, u.cache_read, u.reasoning),
            (Some(12), Some(3), Some(4), Some(1))
        );
        assert_eq!(obs.native_finish.as_deref(), Some("completed"));
        assert_eq!(obs.service_tier.as_deref(), Some("default"));
    }
}
