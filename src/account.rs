//! Turns what the layer saw of one exchange into an [`ActivityRecord`] and hands it to the
//! writer: outcome, finish reason, reported or estimated usage, exact cost, timing.
//!
//! [`Pending`] is the request side (made by the service), [`Accounting`] the response side
//! (made by the future, fed by the body). Both end in exactly one record: `Accounting::end`
//! consumes the state, and a drop guard calls it when nobody else did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use crate::attribution::{Attribution, Upstream};
use crate::layer::Shared;
use crate::pricing::TokenUsage;
use crate::protocol::{self, Observation, Tracker};
use crate::record::{ActivityError, ActivityRecord, Api, FinishReason, Outcome, UsageSource};
use crate::request::{RequestFacts, prompt_chars};
use crate::sse::SseScanner;
use crate::strip::Strip;

/// Characters per token for estimates (the rule of thumb OpenAI documents for English text).
pub(crate) const CHARS_PER_TOKEN: u64 = 4;

/// The request side of an exchange, before the response arrives.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) record: ActivityRecord,
    pub(crate) start: Instant,
    pub(crate) facts: RequestFacts,
    /// The layer added `stream_options.include_usage`: strip what the client did not ask for.
    pub(crate) injected: bool,
}

impl Pending {
    /// A handler may name the user or the upstream only once it has run: an [`Attribution`]
    /// or [`Upstream`] in the response extensions fills what the request side left empty.
    pub(crate) fn absorb_response(&mut self, extensions: &http::Extensions) {
        if let Some(who) = extensions.get::<Attribution>() {
            who.apply(&mut self.record);
        }
        if self.record.upstream.is_none() {
            self.record.upstream = extensions.get::<Upstream>().map(|u| u.0.clone());
        }
    }

    /// The exchange ended without a response: the inner service failed, or the caller dropped
    /// the future (the client went away before the response head).
    pub(crate) fn end_without_response(self, shared: &Shared, error: Option<ActivityError>) {
        let mut record = self.record;
        let cancelled = error.is_none();
        record.outcome = if cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Error
        };
        record.finish_reason = Some(if cancelled {
            FinishReason::Cancelled
        } else {
            FinishReason::Error
        });
        record.error = error;
        if record.model.is_none() {
            record.model = self.facts.model;
        }
        record.provider = record
            .model
            .as_deref()
            .map(|m| shared.providers.provider(m).to_owned());
        record.latency_ms = Some(millis(self.start.elapsed()));
        shared.writer.record(record);
    }
}

/// How the response body is read for accounting.
#[derive(Debug)]
enum Reader {
    /// An SSE stream, scanned frame by frame.
    Sse(SseScanner),
    /// A JSON body, kept (as refcounted frames, not copies) up to a cap and parsed at the end.
    Json { frames: Vec<Bytes>, len: usize },
    /// Nothing to read (unknown API, encoded body, over the cap).
    Off,
}

/// How the response body ended.
#[derive(Debug)]
pub(crate) enum End {
    /// End of stream (`None`, trailers, or `is_end_stream()` after data).
    Complete,
    /// The body returned an error.
    Failed(String),
    /// The body was dropped before its end (the client went away).
    Dropped,
}

/// The response side of an exchange, fed by [`ActivityBody`](crate::ActivityBody).
pub(crate) struct Accounting {
    shared: Arc<Shared>,
    record: ActivityRecord,
    start: Instant,
    facts: RequestFacts,
    tracker: Option<Box<dyn Tracker>>,
    obs: Observation,
    reader: Reader,
    strip: Option<Strip>,
    first_output: Option<Instant>,
}

impl std::fmt::Debug for Accounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounting")
            .field("record", &self.record)
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl Accounting {
    /// Starts accounting a response with `status` and `headers`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        pending: Pending,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Self {
        let Pending {
            mut record,
            start,
            facts,
            injected,
        } = pending;
        record.status_code = Some(status.as_u16());
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let sse = content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream");
        record.stream = sse;
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .filter(|e| !e.eq_ignore_ascii_case("identity"));

        let tracker = protocol::tracker(record.api);
        let reader = if let Some(encoding) = encoding {
            record.metadata.insert(
                "usage_unavailable".into(),
                Value::String(format!("content-encoding: {encoding}")),
            );
            Reader::Off
        } else if sse && tracker.is_some() {
            Reader::Sse(SseScanner::new(shared.max_sse_line))
        } else if tracker.is_some() || !status.is_success() {
            Reader::Json {
                frames: Vec::new(),
                len: 0,
            }
        } else {
            Reader::Off
        };
        let strip = (injected && matches!(reader, Reader::Sse(_))).then(Strip::default);
        Accounting {
            shared,
            record,
            start,
            facts,
            tracker,
            obs: Observation::default(),
            reader,
            strip,
            first_output: None,
        }
    }

    /// Whether the layer rewrites this response's bytes (then `Content-Length` must go).
    pub(crate) fn rewrites(&self) -> bool {
        self.strip.is_some()
    }

    /// One data frame. Returns the bytes to send instead when the stream is being stripped.
    pub(crate) fn on_data(&mut self, data: &Bytes) -> Option<Bytes> {
        match &mut self.reader {
            Reader::Sse(scanner) => {
                let obs = &mut self.obs;
                let first = &mut self.first_output;
                let mut tracker = self.tracker.as_deref_mut();
                let mut strip = self.strip.as_mut();
                if let Some(s) = strip.as_mut() {
                    s.begin(data);
                }
                scanner.feed(data, &mut |event, end| {
                    if let Some(t) = tracker.as_mut() {
                        let started = obs.output_started;
                        t.on_event(event, obs);
                        if !started && obs.output_started {
                            *first = Some(Instant::now());
                        }
                    }
                    if let Some(s) = strip.as_mut() {
                        s.event(event.data, end);
                    }
                });
                strip.map(Strip::end_frame)
            }
            Reader::Json { frames, len } => {
                *len += data.len();
                if *len > self.shared.max_response_body {
                    self.record
                        .metadata
                        .insert("response_body".into(), Value::from("over_cap"));
                    self.reader = Reader::Off;
                } else {
                    frames.push(data.clone());
                }
                None
            }
            Reader::Off => None,
        }
    }

    /// The body ended: writes the record. Returns bytes still held by a stripped stream, which
    /// the body must send before it ends.
    pub(crate) fn end(mut self, end: End) -> Option<Bytes> {
        let now = Instant::now();
        let tail = match end {
            End::Complete => self.read_rest(),
            _ => None,
        };
        let shared = self.shared.clone();
        shared.writer.record(self.into_record(end, now));
        tail.filter(|t| !t.is_empty())
    }

    /// End of stream: the scanner's last event, or the whole JSON body.
    fn read_rest(&mut self) -> Option<Bytes> {
        match std::mem::replace(&mut self.reader, Reader::Off) {
            Reader::Sse(mut scanner) => {
                let obs = &mut self.obs;
                let mut tracker = self.tracker.as_deref_mut();
                scanner.finish(&mut |event, _| {
                    if let Some(t) = tracker.as_mut() {
                        t.on_event(event, obs);
                    }
                });
                if scanner.overflowed() > 0 {
                    self.record.metadata.insert(
                        "sse_lines_skipped".into(),
                        Value::from(scanner.overflowed()),
                    );
                }
                self.strip.as_mut().map(Strip::finish)
            }
            Reader::Json { frames, .. } => {
                let body = concat(frames);
                let status_ok = self
                    .record
                    .status_code
                    .is_some_and(|s| (200..300).contains(&s));
                if status_ok {
                    if let Some(t) = self.tracker.as_deref_mut() {
                        t.on_json(&body, &mut self.obs);
                    }
                } else {
                    let (error, request_id) = protocol::parse_error_body(&body);
                    self.obs.error = self.obs.error.take().or(error);
                    self.obs.request_id = self.obs.request_id.take().or(request_id);
                }
                None
            }
            Reader::Off => None,
        }
    }

    fn into_record(mut self, end: End, now: Instant) -> ActivityRecord {
        let mut r = self.record;
        let obs = self.obs;
        let status_ok = r.status_code.is_some_and(|s| (200..300).contains(&s));
        let tracked = self.tracker.is_some();

        r.outcome = if !status_ok || obs.error.is_some() {
            Outcome::Error
        } else {
            match &end {
                End::Dropped => Outcome::Cancelled,
                End::Failed(_) => Outcome::Interrupted,
                End::Complete if r.stream && tracked && !obs.terminal => Outcome::Interrupted,
                End::Complete => Outcome::Ok,
            }
        };
        if let End::Failed(message) = &end {
            r.metadata
                .insert("body_error".into(), Value::String(message.clone()));
        }

        r.native_finish_reason = obs.native_finish;
        r.finish_reason = obs
            .finish
            .or_else(|| {
                r.native_finish_reason
                    .as_deref()
                    .map(FinishReason::normalise)
            })
            .or(match r.outcome {
                Outcome::Error => Some(FinishReason::Error),
                Outcome::Cancelled => Some(FinishReason::Cancelled),
                _ => None,
            });
        r.error = obs.error;
        if let Some(id) = obs.request_id {
            r.metadata.insert("request_id".into(), Value::String(id));
        }
        for (k, v) in obs.notes {
            r.metadata.entry(k).or_insert(v);
        }

        r.model = obs.model.or(r.model.take()).or(self.facts.model.take());
        r.provider = r
            .model
            .as_deref()
            .map(|m| self.shared.providers.provider(m).to_owned());

        let streamed = obs.output_chars.div_ceil(CHARS_PER_TOKEN);
        // A stream that stopped before its terminal marker may carry a usage that was only
        // true at its start (Anthropic's `message_start` says 1 output token).
        let partial = tracked && r.stream && !obs.terminal;
        if let Some(u) = obs.usage {
            r.usage_source = UsageSource::Reported;
            r.input_tokens = u.input;
            r.output_tokens = u.output;
            r.cache_read_tokens = u.cache_read;
            r.cache_write_tokens = u.cache_write;
            r.reasoning_tokens = u.reasoning;
            if partial && u.output.is_none_or(|o| o < streamed) {
                r.output_tokens = Some(streamed);
                r.usage_source = UsageSource::Estimated;
                note_estimate(&mut r);
            }
        } else if tracked
            && status_ok
            && (r.stream || r.outcome != Outcome::Ok)
            && (r.outcome != Outcome::Error || obs.output_chars > 0)
        {
            r.usage_source = UsageSource::Estimated;
            // Only a stream's text is counted; a JSON body cut short says nothing countable.
            r.output_tokens = r.stream.then_some(streamed);
            r.input_tokens = self
                .facts
                .body
                .as_deref()
                .map(prompt_chars)
                .filter(|&chars| chars > 0)
                .map(|chars| chars.div_ceil(CHARS_PER_TOKEN));
            note_estimate(&mut r);
        }
        r.total_tokens = match (r.input_tokens, r.output_tokens) {
            (Some(i), Some(o)) => Some(i.saturating_add(o)),
            _ => None,
        };
        // A cost from half the counts would be a made-up figure: both must be known.
        if r.total_tokens.is_some() {
            price(&self.shared, &mut r);
        }

        let latency = now.saturating_duration_since(self.start);
        r.latency_ms = Some(millis(latency));
        let ttft = self
            .first_output
            .filter(|_| r.stream)
            .map(|t| t.saturating_duration_since(self.start));
        r.ttft_ms = ttft.map(millis);
        let generating = latency.saturating_sub(ttft.unwrap_or_default());
        r.speed = match r.output_tokens {
            Some(out) if out > 0 && !generating.is_zero() => {
                Some(out as f64 / generating.as_secs_f64())
            }
            _ => None,
        };
        r
    }
}

/// Says how an estimate was made.
fn note_estimate(r: &mut ActivityRecord) {
    r.metadata.insert(
        "estimate".into(),
        Value::from(format!("characters / {CHARS_PER_TOKEN}")),
    );
}

/// Sets `cost_usd`, or notes that the model has no price.
fn price(shared: &Shared, r: &mut ActivityRecord) {
    let usage = TokenUsage {
        input: r.input_tokens.unwrap_or(0),
        output: r.output_tokens.unwrap_or(0),
        cache_read: r.cache_read_tokens.unwrap_or(0),
        cache_write: r.cache_write_tokens.unwrap_or(0),
        reasoning: r.reasoning_tokens.unwrap_or(0),
    };
    r.cost_usd = r
        .model
        .as_deref()
        .and_then(|m| shared.prices.cost(m, &usage));
    if r.cost_usd.is_none() {
        r.metadata
            .insert("pricing".into(), Value::from("unknown_model"));
    }
}

/// The record's millisecond figures: microsecond resolution.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// One buffer from the kept frames (no copy when there is one frame).
pub(crate) fn concat(frames: Vec<Bytes>) -> Bytes {
    match frames.len() {
        0 => Bytes::new(),
        1 => frames.into_iter().next().unwrap_or_default(),
        _ => {
            let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
            for f in frames {
                out.extend_from_slice(&f);
            }
            out.freeze()
        }
    }
}

/// Ends an exchange exactly once: on an explicit end, or with [`End::Dropped`] when dropped.
#[derive(Debug, Default)]
pub(crate) struct Guard(Option<Box<Accounting>>);

impl Guard {
    pub(crate) fn new(accounting: Accounting) -> Self {
        Guard(Some(Box::new(accounting)))
    }

    pub(crate) fn is_active(&self) -> bool {
        self.0.is_some()
    }

    pub(crate) fn on_data(&mut self, data: &Bytes) -> Option<Bytes> {
        self.0.as_mut().and_then(|a| a.on_data(data))
    }

    pub(crate) fn end(&mut self, end: End) -> Option<Bytes> {
        self.0.take().and_then(|a| a.end(end))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.end(End::Dropped);
    }
}

/// The API whose responses carry a model the request may not name (Gemini names it in the
/// path); kept here so the service stays about plumbing.
pub(crate) fn path_model(api: Api, path: &str) -> Option<String> {
    (api == Api::GeminiGenerate)
        .then(|| protocol::gemini_path_model(path))
        .flatten()
        .map(str::to_owned)
}
