//! What every route shares: reading a request into a [`Plan`] (overrides, token counts, the
//! reply), and the providers' error bodies.

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::Mock;

/// `created` / `created_at` of every answer (2026-01-01T00:00:00Z): fixed, so that answers
/// are reproducible byte for byte.
pub(super) const CREATED: u64 = 1_767_225_600;

/// The reply's words, cycled. Plain ASCII: nothing JSON must escape.
const WORDS: [&str; 24] = [
    "The",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "the",
    "mock",
    "upstream",
    "streams",
    "a",
    "steady",
    "deterministic",
    "reply",
    "of",
    "exactly",
    "one",
    "token",
    "per",
    "word.",
];

/// The whole reply text, built once: `text[..ends[n - 1]]` is the reply of `n` words.
struct Reply {
    text: String,
    ends: Vec<usize>,
}

static REPLY: LazyLock<Reply> = LazyLock::new(|| {
    let mut text = String::new();
    let mut ends = Vec::with_capacity(crate::MAX_REPLY_WORDS);
    for word in WORDS.iter().cycle().take(crate::MAX_REPLY_WORDS) {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
        ends.push(text.len());
    }
    Reply { text, ends }
});

/// Words `from..to` of the reply, with the space before them when `from > 0`.
fn words(from: usize, to: usize) -> &'static str {
    let reply = &*REPLY;
    let start = if from == 0 { 0 } else { reply.ends[from - 1] };
    &reply.text[start..reply.ends[to - 1]]
}

/// The error body family of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// OpenAI chat and Responses: `{"error":{"message","type","param","code"}}`.
    OpenAi,
    /// `{"type":"error","error":{"type","message"},"request_id"}`.
    Anthropic,
    /// `{"error":{"code","message","status"}}`.
    Gemini,
}

impl Dialect {
    /// `status` with this provider's error body.
    pub(super) fn error(self, status: StatusCode, message: &str, seq: u64) -> Response {
        let message = json_string(message);
        let code = status.as_u16();
        let body = match self {
            Dialect::OpenAi => {
                let (kind, code) = match code {
                    401 => ("invalid_request_error", r#""invalid_api_key""#),
                    429 => ("requests", r#""rate_limit_exceeded""#),
                    500.. => ("server_error", "null"),
                    _ => ("invalid_request_error", "null"),
                };
                format!(
                    r#"{{"error":{{"message":{message},"type":"{kind}","param":null,"code":{code}}}}}"#
                )
            }
            Dialect::Anthropic => {
                let kind = match code {
                    401 => "authentication_error",
                    403 => "permission_error",
                    404 => "not_found_error",
                    413 => "request_too_large",
                    429 => "rate_limit_error",
                    529 => "overloaded_error",
                    500.. => "api_error",
                    _ => "invalid_request_error",
                };
                format!(
                    r#"{{"type":"error","error":{{"type":"{kind}","message":{message}}},"request_id":"req_mock{seq}"}}"#
                )
            }
            Dialect::Gemini => {
                let kind = match code {
                    401 => "UNAUTHENTICATED",
                    403 => "PERMISSION_DENIED",
                    404 => "NOT_FOUND",
                    429 => "RESOURCE_EXHAUSTED",
                    503 => "UNAVAILABLE",
                    504 => "DEADLINE_EXCEEDED",
                    500.. => "INTERNAL",
                    _ => "INVALID_ARGUMENT",
                };
                format!(r#"{{"error":{{"code":{code},"message":{message},"status":"{kind}"}}}}"#)
            }
        };
        (status, [(CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// The answer to send instead of a reply: a status and a message in the route's error shape.
#[derive(Debug)]
pub(super) struct Refusal {
    dialect: Dialect,
    status: StatusCode,
    message: String,
    seq: u64,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.dialect.error(self.status, &self.message, self.seq)
    }
}

/// How an answer breaks off (`x-mock-error: mid-stream | cut`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Break {
    /// Half the content, then the provider's in-band error.
    MidStream,
    /// Half the content, then the end without the terminal marker.
    Cut,
}

/// Where a route finds what it needs in a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Route {
    pub(super) dialect: Dialect,
    /// JSON pointers of the token limit, the first present wins.
    pub(super) limits: &'static [&'static str],
}

/// Everything an answer needs, read from one request.
#[derive(Debug)]
pub(super) struct Plan {
    /// The request's number on this server (ids).
    pub(super) seq: u64,
    /// The requested model as a JSON string literal (quoted, escaped).
    pub(super) model: String,
    /// Streamed (SSE, or Gemini's streamed JSON array).
    pub(super) stream: bool,
    /// OpenAI chat `stream_options.include_usage`.
    pub(super) include_usage: bool,
    /// The token limit the request gave, if any.
    pub(super) limit: Option<u64>,
    pub(super) input: u64,
    pub(super) cache_read: u64,
    /// Words of the reply = output tokens.
    pub(super) words: usize,
    /// The reply was cut to the limit: the finish reason is "length".
    pub(super) truncated: bool,
    /// Content chunks of the whole stream (`≤ words`).
    pub(super) chunks: usize,
    pub(super) delay: Duration,
    pub(super) fault: Option<Break>,
}

impl Plan {
    /// Reads a request; `Err` is the answer to send instead (a 400, or the status asked for
    /// with `x-mock-error`). `path_model` and `stream` come from a Gemini path; otherwise the
    /// body's `model` and `stream` members say.
    pub(super) fn read(
        mock: &Mock,
        route: Route,
        headers: &HeaderMap,
        body: &[u8],
        path_model: Option<&str>,
        stream: Option<bool>,
    ) -> Result<Plan, Refusal> {
        let seq = mock.next_seq();
        let dialect = route.dialect;
        let refuse = |status, message: &str| Refusal {
            dialect,
            status,
            message: message.to_owned(),
            seq,
        };
        let bad = |message: &str| refuse(StatusCode::BAD_REQUEST, message);

        let overrides = Overrides::read(mock, headers).map_err(|(status, m)| refuse(status, &m))?;

        let request: Value = serde_json::from_slice(body).map_err(|e| {
            bad(&format!(
                "We could not parse the JSON body of your request: {e}"
            ))
        })?;
        if !request.is_object() {
            return Err(bad("The request body must be a JSON object"));
        }
        let model = match path_model {
            Some(m) => m,
            None => request
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .ok_or_else(|| bad("You must provide a model parameter"))?,
        };
        let stream = stream.unwrap_or_else(|| request.get("stream") == Some(&Value::Bool(true)));
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let limit = token_limit(&request, route.limits).map_err(|m| bad(&m))?;

        let input = prompt_chars(&request).div_ceil(4).max(1);
        let natural = mock.config.reply_words;
        let words = limit.map_or(natural, |l| natural.min(l.try_into().unwrap_or(usize::MAX)));
        Ok(Plan {
            seq,
            model: json_string(model),
            stream,
            include_usage,
            limit,
            input,
            cache_read: overrides.cache_read.min(input),
            words,
            truncated: words < natural,
            chunks: overrides.chunks.min(words),
            delay: overrides.delay,
            fault: overrides.fault,
        })
    }

    /// Output tokens.
    pub(super) fn output(&self) -> u64 {
        self.words as u64
    }

    /// The whole reply text.
    pub(super) fn text(&self) -> &'static str {
        words(0, self.words)
    }

    /// The content chunks to send: `(text, words so far)`; half of them (at least one) when
    /// the answer breaks off.
    pub(super) fn pieces(&self) -> impl Iterator<Item = (&'static str, usize)> + use<> {
        let (total, chunks) = (self.words, self.chunks);
        let sent = match self.fault {
            Some(_) => (chunks / 2).max(1),
            None => chunks,
        };
        (0..sent).map(move |i| {
            let (from, to) = (i * total / chunks, (i + 1) * total / chunks);
            (words(from, to), to)
        })
    }
}

/// The `x-mock-*` headers of a request, over the server's configuration.
struct Overrides {
    chunks: usize,
    delay: Duration,
    cache_read: u64,
    fault: Option<Break>,
}

impl Overrides {
    /// `Err` is the status to answer with: a 400 for a malformed header, or the status
    /// `x-mock-error` asks for.
    fn read(mock: &Mock, headers: &HeaderMap) -> Result<Overrides, (StatusCode, String)> {
        let bad = |message: String| (StatusCode::BAD_REQUEST, message);
        let chunks = match header_number(headers, "x-mock-chunks").map_err(bad)? {
            None => mock.config.chunks,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("x-mock-chunks must be at least 1".into()))?,
        };
        let delay = header_number(headers, "x-mock-delay-ms")
            .map_err(bad)?
            .map_or(mock.config.delay, Duration::from_millis);
        let cache_read = header_number(headers, "x-mock-cache-read")
            .map_err(bad)?
            .unwrap_or(0);
        let fault = match headers.get("x-mock-error").map(|v| v.to_str()) {
            None => None,
            Some(Ok("mid-stream")) => Some(Break::MidStream),
            Some(Ok("cut")) => Some(Break::Cut),
            Some(value) => {
                let status = value
                    .ok()
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .filter(|s| (400..=599).contains(s))
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or_else(|| {
                        bad("x-mock-error takes a status 400-599, `mid-stream` or `cut`".into())
                    })?;
                let code = status.as_u16();
                let message = format!("The mock upstream was asked to fail (x-mock-error: {code})");
                return Err((status, message));
            }
        };
        Ok(Overrides {
            chunks,
            delay,
            cache_read,
            fault,
        })
    }
}

/// A header's whole number: `Ok(None)` when absent, `Err` with a message when malformed.
fn header_number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("{name} takes a whole number"))
        })
        .transpose()
}

/// The first of `pointers` present in `request`: a whole number ≥ 1, or an error message.
fn token_limit(request: &Value, pointers: &[&str]) -> Result<Option<u64>, String> {
    let Some((pointer, value)) = pointers
        .iter()
        .find_map(|p| request.pointer(p).filter(|v| !v.is_null()).map(|v| (p, v)))
    else {
        return Ok(None);
    };
    let name = pointer.rsplit('/').next().unwrap_or(pointer);
    value
        .as_u64()
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| format!("Invalid '{name}': expected an integer >= 1, got {value}"))
}

/// Characters of prompt text: every string that is the value of a `content`, `text`,
/// `input`, `instructions` or `system` member, or an element of an array that is.
fn prompt_chars(request: &Value) -> u64 {
    fn walk(value: &Value, prompt: bool, total: &mut u64) {
        match value {
            Value::String(s) if prompt => *total += s.chars().count() as u64,
            Value::Array(items) => items.iter().for_each(|v| walk(v, prompt, total)),
            Value::Object(members) => {
                for (key, v) in members {
                    let prompt = matches!(
                        key.as_str(),
                        "content" | "text" | "input" | "instructions" | "system"
                    );
                    walk(v, prompt, total);
                }
            }
            _ => {}
        }
    }
    let mut total = 0;
    walk(request, false, &mut total);
    total
}

/// `s` as a JSON string literal.
pub(super) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}
