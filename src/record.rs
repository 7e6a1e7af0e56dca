//! [`ActivityRecord`]: one row of activity, and its small enums.
//!
//! The serde names of every field are the contract shared by the SQL columns, the `replay`
//! example's output and the gateway's activity API (see `docs/DESIGN.md` §2 of the project).

use std::borrow::Cow;
use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use uuid::Uuid;
use uuid::timestamp::Timestamp;
use uuid::timestamp::context::ContextV7;

mod details;
mod metadata;
mod words;

pub use self::details::{CostDetails, Details, UsageCounts};
pub use self::metadata::{Iter as MetadataIter, Metadata};
pub(crate) use self::words::{word, word_of};

/// Whether a record is an API call seen by the layer or an event the application recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// An HTTP request that passed through [`ActivityLayer`](crate::ActivityLayer).
    Request,
    /// Non-request activity (login, registration, session creation) recorded through an
    /// [`EventRecorder`](crate::EventRecorder).
    Event,
}

/// The wire format of a request, detected from its path (see [`LlmApi::detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LlmApi {
    /// OpenAI chat completions (`/v1/chat/completions`, legacy `/v1/completions`) and every
    /// OpenAI-compatible provider (Groq, Mistral, DeepSeek, OpenRouter …).
    #[serde(rename = "openai.chat")]
    OpenAiChat,
    /// The OpenAI Responses API (`/v1/responses`).
    #[serde(rename = "openai.responses")]
    OpenAiResponses,
    /// OpenAI embeddings (`/v1/embeddings`): input tokens only.
    #[serde(rename = "openai.embeddings")]
    OpenAiEmbeddings,
    /// Anthropic Messages (`/v1/messages`).
    #[serde(rename = "anthropic.messages")]
    AnthropicMessages,
    /// Gemini `…:generateContent` and `…:streamGenerateContent`.
    #[serde(rename = "gemini.generate")]
    GeminiGenerate,
    /// Anything else: the request is still recorded (status, latency, outcome), without usage.
    #[serde(rename = "unknown")]
    Unknown,
}

impl LlmApi {
    /// The name used in JSON and SQL (`openai.chat` …).
    pub fn as_str(self) -> &'static str {
        match self {
            LlmApi::OpenAiChat => "openai.chat",
            LlmApi::OpenAiResponses => "openai.responses",
            LlmApi::OpenAiEmbeddings => "openai.embeddings",
            LlmApi::AnthropicMessages => "anthropic.messages",
            LlmApi::GeminiGenerate => "gemini.generate",
            LlmApi::Unknown => "unknown",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx response whose body reached the protocol's end.
    Ok,
    /// A non-2xx status, an in-band error event, or `response.failed`.
    Error,
    /// The client dropped the response body before its end.
    Cancelled,
    /// The body ended or failed before the protocol's terminal marker.
    Interrupted,
}

impl Outcome {
    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// The normalised reason a generation stopped; the provider's own word is kept in
/// [`ActivityRecord::native_finish_reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end: OpenAI `stop`, Anthropic `end_turn`/`stop_sequence`, Gemini `STOP`, a
    /// completed Response.
    Stop,
    /// The token limit: `length`, `max_tokens`, `MAX_TOKENS`, Responses `max_output_tokens`.
    Length,
    /// The model called a tool: `tool_calls`, `function_call`, `tool_use`.
    ToolCalls,
    /// Filtered: `content_filter`, `SAFETY`, `RECITATION`, `refusal`.
    ContentFilter,
    /// The provider reported an error.
    Error,
    /// The client went away.
    Cancelled,
    /// Any other reason the provider gave.
    Other,
}

impl FinishReason {
    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
            FinishReason::Cancelled => "cancelled",
            FinishReason::Other => "other",
        }
    }

    /// Normalises a provider's finish reason (any wire format). Unknown words map to
    /// [`FinishReason::Other`].
    pub fn normalise(native: &str) -> FinishReason {
        match native {
            "stop" | "end_turn" | "stop_sequence" | "STOP" | "completed" | "FINISH_REASON_STOP" => {
                FinishReason::Stop
            }
            "length" | "max_tokens" | "MAX_TOKENS" | "max_output_tokens" | "model_length" => {
                FinishReason::Length
            }
            "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
            "content_filter" | "SAFETY" | "RECITATION" | "refusal" | "BLOCKLIST"
            | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => FinishReason::ContentFilter,
            "error" | "failed" => FinishReason::Error,
            "cancelled" => FinishReason::Cancelled,
            _ => FinishReason::Other,
        }
    }
}

/// Where the token counts of a record come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The provider reported them.
    Reported,
    /// The layer counted them from the request and the streamed text (see the crate docs,
    /// "Estimates").
    Estimated,
    /// There are none (an error before any output, an unknown API, an event).
    None,
}

impl UsageSource {
    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
            UsageSource::None => "none",
        }
    }
}

/// Where a record's [`cost_usd`](ActivityRecord::cost_usd) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The provider stated what it charged (OpenRouter's `usage.cost`); the price table's
    /// figure is kept in [`cost_details`](ActivityRecord::cost_details) for comparison.
    Reported,
    /// Computed from the token counts and the price table; the parts in
    /// [`cost_details`](ActivityRecord::cost_details) add up to it exactly.
    Computed,
}

impl CostSource {
    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Reported => "reported",
            CostSource::Computed => "computed",
        }
    }
}

/// A provider's error, from an error body or an in-band error event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    /// The provider's error type or code (`invalid_request_error`, `RESOURCE_EXHAUSTED` …).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The provider's message, cut to 1 KiB on a character boundary.
    pub message: String,
}

impl ProviderError {
    /// The longest error message a record keeps, in bytes.
    pub const MAX_MESSAGE: usize = 1024;

    /// Builds an error, cutting `message` to [`MAX_MESSAGE`](Self::MAX_MESSAGE) bytes on a character
    /// boundary.
    pub fn new(kind: Option<String>, message: &str) -> Self {
        ProviderError {
            kind,
            message: message[..char_floor(message, ProviderError::MAX_MESSAGE)].to_owned(),
        }
    }
}

/// The largest index of `s` at most `max` that is a character boundary (`s.len()` when
/// `max` is past it).
pub(crate) fn char_floor(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// One row of activity: an API request seen by the layer or an event the application recorded.
///
/// Token fields follow OpenTelemetry's `gen_ai.usage.*` semantics: `input_tokens` includes
/// cache reads and writes, `output_tokens` includes reasoning; the `cache_*` and `reasoning`
/// fields are parts of those totals. Unknown values are `None` (JSON `null`), never `0`.
/// `cost_usd` is an exact decimal, serialised as a JSON string (`"0.0000325"`) so that no
/// reader has to go through a binary float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// UUID v7 made when the request entered the layer; every sink's idempotency key.
    pub id: Uuid,
    /// Request or application event.
    pub kind: RecordKind,
    /// When the request started (UTC, microsecond precision).
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub timestamp: DateTime<Utc>,
    /// Who made it, from [`Attribution`](crate::Attribution).
    pub user_id: Option<String>,
    /// The chat session, from [`Attribution`](crate::Attribution).
    pub session_id: Option<String>,
    /// The application that made it (default `"API"`).
    ///
    /// A `Cow` so that the default and other constant names cost no allocation per record
    /// (it was a `String`: assign with `.into()`, read through `&str`).
    pub app: Cow<'static, str>,
    /// Request path without the query, e.g. `/v1/chat/completions`.
    ///
    /// Borrowed for the wire formats' usual paths (see [`LlmApi::detect`]), owned for any
    /// other (it was a `String`).
    pub endpoint: Cow<'static, str>,
    /// The wire format.
    pub api: LlmApi,
    /// The model the response names; else the request's; else the path's (Gemini).
    pub model: Option<String>,
    /// The model's maker (`OpenAI`, `Anthropic`, `Google` …), see [`ProviderRules`](crate::ProviderRules).
    ///
    /// Borrowed when the rule names it with a `&'static str` (every built-in rule), so that
    /// naming the maker costs no allocation per record (it was an `Option<String>`).
    pub provider: Option<Cow<'static, str>>,
    /// Where a proxy sent the request, when the application says so.
    pub upstream: Option<String>,
    /// Whether the response was an SSE stream.
    pub stream: bool,
    /// The HTTP status returned to the client (`None` for events).
    pub status_code: Option<u16>,
    /// How the request ended.
    pub outcome: Outcome,
    /// The normalised finish reason, `None` when the provider said nothing.
    pub finish_reason: Option<FinishReason>,
    /// Exactly what the provider said (`end_turn`, `MAX_TOKENS` …); the reasons providers
    /// document are borrowed, not copied.
    pub native_finish_reason: Option<Cow<'static, str>>,
    /// All prompt tokens, including cache reads and writes.
    pub input_tokens: Option<u64>,
    /// All generated tokens, including reasoning.
    pub output_tokens: Option<u64>,
    /// `input_tokens + output_tokens`.
    pub total_tokens: Option<u64>,
    /// Prompt tokens read from a cache (part of `input_tokens`).
    pub cache_read_tokens: Option<u64>,
    /// Prompt tokens written to a cache (part of `input_tokens`).
    pub cache_write_tokens: Option<u64>,
    /// Reasoning tokens (part of `output_tokens`).
    pub reasoning_tokens: Option<u64>,
    /// Whether the token counts were reported, estimated, or are absent.
    pub usage_source: UsageSource,
    /// Exact cost in US dollars; `None` when the model has no price or there is no usage.
    pub cost_usd: Option<Decimal>,
    /// Whether `cost_usd` is the provider's stated charge or computed from the price table;
    /// `None` when there is no cost.
    #[serde(default)]
    pub cost_source: Option<CostSource>,
    /// One exact amount per priced part (`input`, `cache_read`, `cache_write_5m`,
    /// `cache_write_1h`, `output`, `reasoning`, `input_audio`, `output_audio`, `web_search` …,
    /// see [`pricing`](crate::pricing)). Computed costs: the parts add up exactly to
    /// `cost_usd`. Beside a reported cost: the price table's parts and their sum under
    /// `computed`, for comparison. `None` when nothing was priced.
    #[serde(default)]
    pub cost_details: Option<CostDetails>,
    /// The service tier the provider says served the request (`priority`, `flex`,
    /// `default`, `standard` …; the documented tiers borrowed, not copied); `None` when it
    /// said nothing.
    #[serde(default)]
    pub service_tier: Option<Cow<'static, str>>,
    /// Counts read beyond the token fields (audio, image and text tokens per direction,
    /// cache writes by lifetime, web searches and fetches …); `None` when there are none.
    /// The layer's names are borrowed, not copied.
    #[serde(default)]
    pub usage_details: Option<UsageCounts>,
    /// Streams: request start to the first event that carries output, in milliseconds.
    pub ttft_ms: Option<f64>,
    /// Request start to the end (or drop) of the response body, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Output tokens per second of generation; `None` when there are no output tokens.
    pub speed: Option<f64>,
    /// The provider's error, if any.
    pub error: Option<ProviderError>,
    /// The application's tags, the provider's `request_id`, and endpoint-specific notes.
    pub metadata: Metadata,
}

impl ActivityRecord {
    /// An empty record of `kind` stamped now with a fresh UUID v7: every optional field
    /// `None`, `app` `"API"`, `outcome` ok, `usage_source` none.
    pub fn new(kind: RecordKind) -> Self {
        let (id, timestamp) = id_and_stamp();
        ActivityRecord {
            id,
            kind,
            timestamp,
            user_id: None,
            session_id: None,
            app: Cow::Borrowed("API"),
            endpoint: Cow::Borrowed(""),
            api: LlmApi::Unknown,
            model: None,
            provider: None,
            upstream: None,
            stream: false,
            status_code: None,
            outcome: Outcome::Ok,
            finish_reason: None,
            native_finish_reason: None,
            input_tokens: None,
            output_tokens: None,
            total_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            reasoning_tokens: None,
            usage_source: UsageSource::None,
            cost_usd: None,
            cost_source: None,
            cost_details: None,
            service_tier: None,
            usage_details: None,
            ttft_ms: None,
            latency_ms: None,
            speed: None,
            error: None,
            metadata: Metadata::new(),
        }
    }
}

/// The clock sequence of the records' ids: a counter within each millisecond, so that the ids
/// of one millisecond still sort in the order they were made (what [`Uuid::now_v7`] does with
/// a context of its own, which it does not expose).
static ID_CONTEXT: Mutex<ContextV7> = Mutex::new(ContextV7::new());

/// A new record's UUID v7 and its timestamp, from one reading of the clock (two readings cost
/// ≈ 100 instructions more per record, and could fall on either side of a millisecond).
///
/// The timestamp is cut to microseconds: what PostgreSQL's timestamptz keeps, so a round trip
/// is exact. It is read from the system clock's duration since the epoch, which is cut without
/// the date arithmetic of [`SubsecRound::trunc_subsecs`] (that only serves a clock set before
/// 1970, for which the id and the timestamp are read apart).
fn id_and_stamp() -> (Uuid, DateTime<Utc>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| {
            let secs = i64::try_from(d.as_secs()).ok()?;
            Some((
                d,
                DateTime::from_timestamp(secs, d.subsec_micros() * 1_000)?,
            ))
        });
    match now {
        Some((since, stamp)) => {
            let ts = Timestamp::from_unix(&ID_CONTEXT, since.as_secs(), since.subsec_nanos());
            (Uuid::new_v7(ts), stamp)
        }
        None => (Uuid::now_v7(), Utc::now().trunc_subsecs(6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_stamped_now_to_the_microsecond() {
        let before = Utc::now().trunc_subsecs(6);
        let stamp = ActivityRecord::new(RecordKind::Request).timestamp;
        let after = Utc::now();
        assert!(
            before <= stamp && stamp <= after,
            "{before} {stamp} {after}"
        );
        assert_eq!(stamp, stamp.trunc_subsecs(6));
    }

    #[test]
    fn ids_carry_the_timestamps_millisecond_and_sort_in_the_order_made() {
        let records: Vec<ActivityRecord> = (0..2_000)
            .map(|_| ActivityRecord::new(RecordKind::Request))
            .collect();
        for r in &records {
            let (secs, nanos) = r.id.get_timestamp().unwrap().to_unix();
            let id_ms = secs * 1_000 + u64::from(nanos) / 1_000_000;
            // One reading of the clock: the same millisecond (the context moves it on only
            // when the clock steps back or a millisecond's counter runs out).
            let stamp_ms = r.timestamp.timestamp_millis() as u64;
            assert!(
                stamp_ms <= id_ms && id_ms <= stamp_ms + 1,
                "{} {}",
                r.id,
                r.timestamp
            );
            assert_eq!(r.id.get_version_num(), 7);
        }
        // Many ids fall in one millisecond: the counter keeps them in order.
        assert!(records.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn json_names_follow_the_contract() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.api = LlmApi::AnthropicMessages;
        r.finish_reason = Some(FinishReason::ToolCalls);
        r.cost_usd = Some(Decimal::new(325, 7));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "request");
        assert_eq!(v["api"], "anthropic.messages");
        assert_eq!(v["finish_reason"], "tool_calls");
        assert_eq!(v["outcome"], "ok");
        assert_eq!(v["usage_source"], "none");
        assert_eq!(v["cost_usd"], "0.0000325");
        assert!(v["input_tokens"].is_null());
        let back: ActivityRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn finish_reasons_normalise_across_formats() {
        for (native, want) in [
            ("end_turn", FinishReason::Stop),
            ("STOP", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("MAX_TOKENS", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("SAFETY", FinishReason::ContentFilter),
            ("weird", FinishReason::Other),
        ] {
            assert_eq!(FinishReason::normalise(native), want, "{native}");
        }
    }

    #[test]
    fn error_message_is_cut_on_a_char_boundary() {
        let long = "é".repeat(ProviderError::MAX_MESSAGE);
        let e = ProviderError::new(None, &long);
        assert!(e.message.len() <= ProviderError::MAX_MESSAGE);
        assert!(e.message.chars().all(|c| c == 'é'));
    }
}
