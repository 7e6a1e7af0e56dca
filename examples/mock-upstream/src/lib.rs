//! An OpenAI / Anthropic / Gemini compatible mock upstream for the gateway's demo, its tests
//! and the load test: mount [`router`] or [`spawn`] it on `127.0.0.1:0`; the `mock_upstream`
//! binary serves it on its own. [`wire`] has each API's request as the tests send it.
//!
//! # Routes
//!
//! | route | answers |
//! |---|---|
//! | `POST /v1/chat/completions` | `chat.completion` JSON, or with `"stream": true` an SSE stream: a role chunk, N content chunks, a finish chunk, the usage-only chunk (`"choices": []`) only when the request has `stream_options.include_usage: true` (and then `"usage": null` on every other chunk, as the API does), `data: [DONE]` |
//! | `POST /v1/responses` | a `response` object, or with `"stream": true` the typed events (`response.created` … N × `response.output_text.delta` … `response.completed`) |
//! | `POST /v1/messages` | an Anthropic message, or with `"stream": true` `message_start` … N × `content_block_delta` … `message_stop` |
//! | `POST /v1beta/models/{model}:generateContent` | a `GenerateContentResponse` |
//! | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` | N chunks, each a whole `GenerateContentResponse` with the cumulative `usageMetadata` and `finishReason` on the last (CRLF framed, as Google does); without `alt=sse`, the same chunks as one JSON array |
//!
//! Every response names the requested model (Gemini: the one in the path). Anything else is
//! a 404 in the provider's error shape.
//!
//! # Token counts
//!
//! Counts are a pure function of the request, so a test can compute them exactly:
//!
//! - **input** = ⌈prompt characters / 4⌉, at least 1. Prompt characters are the characters
//!   (Unicode scalar values) of every string that is the value of a `content`, `text`,
//!   `input`, `instructions` or `system` member, or an element of an array that is, anywhere
//!   in the request body.
//! - **output** = the number of words of the reply. The reply is a fixed text (`The quick
//!   brown fox jumps over the lazy dog while the mock upstream streams a steady deterministic
//!   reply of exactly one token per word.`, repeated as needed) of
//!   [`MockConfig::reply_words`] words (default 24), cut to the request's token limit when
//!   that is smaller — `max_completion_tokens` or `max_tokens` (OpenAI chat),
//!   `max_output_tokens` (Responses), `max_tokens` (Anthropic),
//!   `generationConfig.maxOutputTokens` (Gemini). A cut reply ends with the provider's
//!   "length" reason (`length`, `incomplete`/`max_output_tokens`, `max_tokens`,
//!   `MAX_TOKENS`), a whole one with its "stop" reason (`stop`, `completed`, `end_turn`,
//!   `STOP`).
//! - **cache reads** = the `x-mock-cache-read: N` header, at most the input (default 0);
//!   they are part of the input as each API counts it (Anthropic's `input_tokens` excludes
//!   them, so there it is input − N). Reasoning tokens are always 0.
//!
//! For example `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, mock!"}],
//! "max_tokens":5}` has 12 prompt characters: 3 input tokens; its reply is `The quick brown
//! fox jumps`: 5 output tokens, finish reason `length`.
//!
//! A stream has `min(chunks, output)` content chunks, the reply's words shared out evenly.
//! Ids count the server's requests (`chatcmpl-mock-1`, `msg_mock1` …) and timestamps are a
//! fixed instant, so two fresh servers answer the same request with the same bytes.
//!
//! # Per-request overrides (headers)
//!
//! - `x-mock-chunks: N` (N ≥ 1) and `x-mock-delay-ms: N` replace [`MockConfig::chunks`] and
//!   [`MockConfig::delay`]. A stream waits `delay` before each content chunk and sends the
//!   events around them at once: time to first token is `delay`, the whole stream
//!   `chunks × delay`.
//! - `x-mock-error: 400…599`: that status with the provider's error body (OpenAI
//!   `{"error":{"message","type","param","code"}}`, Anthropic
//!   `{"type":"error","error":{"type","message"},"request_id"}`, Gemini
//!   `{"error":{"code","message","status"}}`).
//! - `x-mock-error: mid-stream`: half the content chunks (at least one), then the provider's
//!   in-band error (OpenAI chat `data: {"error":{…}}`, Responses `event: error` then
//!   `response.failed`, Anthropic `event: error`, Gemini an error chunk), then the end.
//! - `x-mock-error: cut`: half the content chunks, then the end without the terminal marker.
//!   For a JSON answer both `mid-stream` and `cut` send half of the body and then fail it, as
//!   a connection reset does.
//! - `x-mock-cache-read: N`: see above.
//!
//! A malformed body, a missing `model`, a token limit below 1 or a bad override header is a
//! 400 in the provider's error shape.

mod anthropic;
mod exchange;
mod gemini;
mod openai_chat;
mod responses;
mod stream;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use exchange::Dialect;

/// The longest reply the mock writes, in words (and so in output tokens).
pub const MAX_REPLY_WORDS: usize = 4096;

/// How the mock answers when a request does not say otherwise.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Content chunks per stream (default 8; at most one per word of the reply).
    pub chunks: usize,
    /// Wait before each content chunk of a stream (default 0: no timer at all).
    pub delay: Duration,
    /// Words (= output tokens) of a reply the request does not limit (default 24, at most
    /// [`MAX_REPLY_WORDS`]).
    pub reply_words: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            chunks: 8,
            delay: Duration::ZERO,
            reply_words: 24,
        }
    }
}

/// The state every handler shares.
#[derive(Debug)]
struct Mock {
    config: MockConfig,
    requests: AtomicU64,
}

impl Mock {
    /// The number of this request (1, 2, …), used in ids.
    fn next_seq(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The mock's routes, ready to serve or to call as a tower service.
pub fn router(config: MockConfig) -> Router {
    let config = MockConfig {
        chunks: config.chunks.max(1),
        reply_words: config.reply_words.clamp(1, MAX_REPLY_WORDS),
        ..config
    };
    let mock = Arc::new(Mock {
        config,
        requests: AtomicU64::new(0),
    });
    Router::new()
        .route("/v1/chat/completions", post(openai_chat::completions))
        .route("/v1/responses", post(responses::create))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1beta/models/{*rest}", post(gemini::generate))
        .fallback(not_found)
        .with_state(mock)
}

/// Serves [`router`] on `127.0.0.1` at a free port; returns the address and the server task.
pub async fn spawn(
    config: MockConfig,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let server = serve(listener, config);
    Ok((addr, tokio::spawn(server)))
}

/// Serves [`router`] on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: TcpListener, config: MockConfig) -> std::io::Result<()> {
    // Streams are many small writes: without TCP_NODELAY, Nagle's algorithm and delayed ACKs
    // hold them back by tens of milliseconds.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(config)).await
}

/// Any other route: a 404 in the error shape of the API family the path belongs to.
async fn not_found(method: Method, uri: Uri) -> Response {
    let dialect = if uri.path().starts_with("/v1beta") {
        Dialect::Gemini
    } else {
        Dialect::OpenAi
    };
    let message = format!("Invalid URL ({method} {})", uri.path());
    dialect.error(axum::http::StatusCode::NOT_FOUND, &message, 0)
}
