//! Wire formats: which API a request speaks, and the trackers that read its responses.
//!
//! Each wire format lives in its own file and implements [`Tracker`]: it is fed the SSE events
//! of a stream one by one, or the whole body of a JSON response, and fills an [`Observation`]
//! (model, usage, finish reason, error, terminal marker, streamed characters). Everything that
//! turns an observation into a record — outcome, estimates, cost, timing — is shared and lives
//! in `account.rs`, so the trackers stay pure parsers.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::record::{FinishReason, LlmApi, ProviderError};
use crate::sse::SseEvent;

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod json;
pub(crate) mod openai_chat;
pub(crate) mod openai_responses;
mod preamble;
mod scan;
pub(crate) mod swar;
#[cfg(test)]
mod testing;
mod usage;

pub(crate) use self::usage::{Modalities, ModalityCount, StatedCost, Usage, UsageDetails};

/// What a tracker saw of one response.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    /// The model the response names.
    pub(crate) model: Option<String>,
    /// The provider's reported usage (the latest, for cumulative streams).
    pub(crate) usage: Option<Usage>,
    /// The provider's finish reason, verbatim.
    pub(crate) native_finish: Option<Cow<'static, str>>,
    /// Its normalised form (trackers set it for reasons `FinishReason::normalise` cannot map,
    /// e.g. Responses `incomplete` + `max_output_tokens`); `None` means "normalise `native_finish`".
    pub(crate) finish: Option<FinishReason>,
    /// An in-band error (error event, `response.failed`, an error object in a chunk).
    pub(crate) error: Option<ProviderError>,
    /// The protocol's terminal marker was seen (`[DONE]`, `message_stop`, `response.completed`,
    /// a Gemini `finishReason` …).
    pub(crate) terminal: bool,
    /// Set by the tracker on the first event that carries output; the body stamps the time.
    pub(crate) output_started: bool,
    /// Characters of streamed output text (content, reasoning, tool arguments), for estimates.
    pub(crate) output_chars: u64,
    /// The provider's request id, when the body carries one.
    pub(crate) request_id: Option<String>,
    /// The service tier the response says served it (`priority`, `flex`, `default` …).
    pub(crate) service_tier: Option<Cow<'static, str>>,
    /// The provider's statement of what it charged (OpenRouter's `usage.cost`).
    pub(crate) stated_cost: Option<StatedCost>,
    /// Endpoint-specific notes merged into the record's `metadata` (e.g. OpenRouter's `cost`).
    pub(crate) notes: Map<String, Value>,
    /// Whether the event just read is a chat stream's usage-only chunk (`choices` an empty
    /// array, `usage` there and not null), when the tracker read it whole with the plain
    /// [`json::Reader`]; `None` says nothing. On printable ASCII without a backslash it is the
    /// strip's own check's answer (see `strip::Follow`), which the strip then takes instead of
    /// reading the chunk again. Taken after each event; not part of the observation.
    pub(crate) usage_only: Option<bool>,
}

/// A wire format's response reader.
pub(crate) trait Tracker: Send + 'static {
    /// One SSE event of a streamed response.
    fn on_event(&mut self, event: &SseEvent<'_>, obs: &mut Observation);
    /// The complete body of a non-streamed 2xx response.
    fn on_json(&mut self, body: &[u8], obs: &mut Observation);
    /// The stream ended, however it ended (complete, failed or dropped): what the tracker
    /// put off goes into `obs` now. Called once, after the last event.
    fn finish(&mut self, _obs: &mut Observation) {}
}

/// The tracker for `api`; `None` for [`LlmApi::Unknown`].
pub(crate) fn tracker(api: LlmApi) -> Option<Box<dyn Tracker>> {
    match api {
        LlmApi::OpenAiChat => Some(Box::new(openai_chat::OpenAiChat::default())),
        LlmApi::OpenAiEmbeddings => Some(Box::new(openai_chat::OpenAiChat::embeddings())),
        LlmApi::OpenAiResponses => Some(Box::new(openai_responses::OpenAiResponses::default())),
        LlmApi::AnthropicMessages => Some(Box::new(anthropic::Anthropic::default())),
        LlmApi::GeminiGenerate => Some(Box::new(gemini::Gemini::default())),
        LlmApi::Unknown => None,
    }
}

impl LlmApi {
    /// Detects the wire format from a request path (without query).
    ///
    /// ```
    /// use tower_activity::LlmApi;
    /// assert_eq!(LlmApi::detect("/v1/chat/completions"), LlmApi::OpenAiChat);
    /// assert_eq!(LlmApi::detect("/openai/v1/responses"), LlmApi::OpenAiResponses);
    /// assert_eq!(LlmApi::detect("/v1/messages"), LlmApi::AnthropicMessages);
    /// assert_eq!(LlmApi::detect("/v1beta/models/gemini-2.5-flash:streamGenerateContent"), LlmApi::GeminiGenerate);
    /// assert_eq!(LlmApi::detect("/healthz"), LlmApi::Unknown);
    /// ```
    pub fn detect(path: &str) -> LlmApi {
        let path = path.trim_end_matches('/');
        if path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent") {
            LlmApi::GeminiGenerate
        } else if path.ends_with("/chat/completions") || path.ends_with("/completions") {
            LlmApi::OpenAiChat
        } else if path.ends_with("/responses") {
            LlmApi::OpenAiResponses
        } else if path.ends_with("/embeddings") {
            LlmApi::OpenAiEmbeddings
        } else if path.ends_with("/v1/messages") || path == "/messages" {
            LlmApi::AnthropicMessages
        } else {
            LlmApi::Unknown
        }
    }
}

/// The model a request path names: only Gemini puts it there (the request body may not).
pub(crate) fn model_from_path(api: LlmApi, path: &str) -> Option<String> {
    (api == LlmApi::GeminiGenerate)
        .then(|| gemini::path_model(path))
        .flatten()
        .map(str::to_owned)
}

/// Reads the error of a non-2xx body in any of the four formats:
/// OpenAI `{"error":{"message","type","code"}}`, Anthropic
/// `{"type":"error","error":{"type","message"},"request_id"}`, Gemini
/// `{"error":{"code","message","status"}}` (also wrapped in a one-element array).
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<ProviderError>, Option<String>) {
    #[derive(Deserialize)]
    struct Body {
        error: Option<ErrorObject>,
        request_id: Option<String>,
    }
    let parsed = serde_json::from_slice::<Body>(body).or_else(|_| {
        serde_json::from_slice::<Vec<Body>>(body)
            .map_err(|_| ())
            .and_then(|v| v.into_iter().next().ok_or(()))
    });
    match parsed {
        Ok(b) => (b.error.map(ErrorObject::into_error), b.request_id),
        Err(()) => (None, None),
    }
}

/// An error object as the four formats spell it; used for bodies and in-band error events.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorObject {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

impl ErrorObject {
    /// The record's `{type, message}`: type is the error's `type`, else Gemini's `status`, else
    /// its `code`. A bare `"type": "error"` (the Responses API's top-level error event) says
    /// less than a code, so the code wins over it.
    pub(crate) fn into_error(self) -> ProviderError {
        let code = match self.code {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (specific, generic) = match self.kind {
            Some(k) if k == "error" => (None, Some(k)),
            k => (k, None),
        };
        let kind = specific.or(self.status).or(code).or(generic);
        ProviderError::new(kind, self.message.as_deref().unwrap_or(""))
    }
}

/// An in-band error as providers send it: an error object, or (rarely) a bare message.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum InBandError {
    /// `{"type", "message", "code"}` in any of the spellings of [`ErrorObject`].
    Object(ErrorObject),
    /// `"error": "message"`.
    Message(String),
}

impl InBandError {
    /// The record's `{type, message}`.
    pub(crate) fn into_error(self) -> ProviderError {
        match self {
            InBandError::Object(e) => e.into_error(),
            InBandError::Message(m) => ProviderError::new(None, &m),
        }
    }
}

/// The error of an SSE `event: error`, whatever its data: `{"error": {…}}`, the error object
/// itself, or text. An error event is an error even when its data says nothing readable.
pub(crate) fn error_event(data: &[u8]) -> ProviderError {
    #[derive(Deserialize)]
    struct Wrapped {
        error: InBandError,
    }
    serde_json::from_slice::<Wrapped>(data)
        .map(|w| w.error.into_error())
        .or_else(|_| serde_json::from_slice::<ErrorObject>(data).map(ErrorObject::into_error))
        .unwrap_or_else(|_| {
            ProviderError::new(Some("error".into()), &String::from_utf8_lossy(data))
        })
}

/// Deserialises `null` as the type's default (`"choices": null` as no choices).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_format() {
        let openai = br#"{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let (e, _) = parse_error_body(openai);
        assert_eq!(
            e.unwrap(),
            ProviderError::new(Some("insufficient_quota".into()), "quota")
        );

        let anthropic = br#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"},"request_id":"req_1"}"#;
        let (e, id) = parse_error_body(anthropic);
        assert_eq!(e.unwrap().kind.as_deref(), Some("invalid_request_error"));
        assert_eq!(id.as_deref(), Some("req_1"));

        let gemini =
            br#"[{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}]"#;
        let (e, _) = parse_error_body(gemini);
        assert_eq!(e.unwrap().kind.as_deref(), Some("RESOURCE_EXHAUSTED"));

        assert_eq!(parse_error_body(b"<html>bad gateway</html>").0, None);
    }

    #[test]
    fn only_gemini_paths_name_a_model() {
        assert_eq!(
            model_from_path(
                LlmApi::GeminiGenerate,
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
            )
            .as_deref(),
            Some("gemini-2.5-pro")
        );
        assert_eq!(
            model_from_path(LlmApi::GeminiGenerate, "/v1/chat/completions"),
            None
        );
        assert_eq!(
            model_from_path(LlmApi::OpenAiChat, "/v1beta/models/gemini-2.5-pro:x"),
            None
        );
    }
}
