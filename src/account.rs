//! Turns what the layer observed of one exchange into an [`ActivityRecord`]: outcome, finish
//! reason, reported or estimated usage, exact cost, timing.
//!
//! An [`Exchange`] starts as the request side (made by the service) and gains a response
//! reader when the response head arrives (fed by the body through the drop guard). It writes
//! nothing itself: the guard hands the record it makes to the writer, exactly once.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::attribution::{Attribution, Upstream};
use crate::bill;
use crate::reader::{Read, ResponseReader, is_sse};
use crate::record::{ActivityRecord, FinishReason, Outcome, ProviderError, UsageSource};
use crate::request::{ModelName, RequestFacts, prompt_chars};
use crate::settings::Settings;

/// Characters per token for estimates (the rule of thumb OpenAI documents for English text).
pub(crate) const CHARS_PER_TOKEN: u64 = 4;

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

/// One request and, once its head arrived, the reading of its response.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// Boxed on its own: it leaves for the writer's queue as a pointer, not a 560-byte copy
    /// at each of the hand-over's steps (guard, writer, lane, queue), and without it the
    /// exchange's box fits the allocator's per-thread cache (≤ 1,032 bytes).
    pub(crate) record: Box<ActivityRecord>,
    pub(crate) start: Instant,
    pub(crate) facts: RequestFacts,
    /// The layer added `stream_options.include_usage`: strip what the client did not ask for.
    pub(crate) injected: bool,
    /// `None` until the response head arrives.
    reader: Option<ResponseReader>,
}

impl Exchange {
    /// A request that entered the layer at `start`.
    pub(crate) fn new(record: Box<ActivityRecord>, start: Instant) -> Self {
        Exchange {
            record,
            start,
            facts: RequestFacts::default(),
            injected: false,
            reader: None,
        }
    }

    /// Whether the response head has arrived.
    pub(crate) fn responded(&self) -> bool {
        self.reader.is_some()
    }

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

    /// The response head arrived with `status` and `headers`: start reading its body.
    /// Returns whether the layer rewrites the body's bytes (then `Content-Length` must go).
    pub(crate) fn respond(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        settings: &Settings,
    ) -> bool {
        self.record.status_code = Some(status.as_u16());
        self.record.stream = is_sse(headers);
        let reader = ResponseReader::new(
            self.record.api,
            status,
            headers,
            self.record.stream,
            self.injected,
            settings,
        );
        let rewrites = reader.rewrites();
        self.reader = Some(reader);
        rewrites
    }

    /// One data frame. Returns the bytes to send instead when the stream is being stripped.
    #[inline]
    pub(crate) fn on_data(&mut self, data: &Bytes) -> Option<Bytes> {
        self.reader.as_mut().and_then(|r| r.on_data(data))
    }

    /// Completes the record of an exchange that ended without a response: the inner service
    /// failed (`error`), or the caller dropped the future (`None`: the client went away
    /// before the response head).
    pub(crate) fn without_response(&mut self, error: Option<ProviderError>, settings: &Settings) {
        let record = &mut *self.record;
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
            record.model = self.facts.model.take().map(ModelName::into_string);
        }
        record.provider = record.model.as_deref().map(|m| settings.providers.maker(m));
        record.latency_ms = Some(millis(self.start.elapsed()));
    }

    /// The response body ended: completes the record in place (the exchange is boxed: the
    /// record, the reader and what it observed are not moved about, only the record leaves,
    /// once, for the writer) and returns the bytes a stripped stream still holds (which the
    /// body must send before it ends). Without a response, as
    /// [`without_response`](Self::without_response) with no error.
    pub(crate) fn finish(&mut self, end: End, settings: &Settings) -> Option<Bytes> {
        let now = Instant::now();
        let status_ok = self
            .record
            .status_code
            .is_some_and(|s| (200..300).contains(&s));
        let Some(reader) = self.reader.as_mut() else {
            self.without_response(None, settings);
            return None;
        };
        let mut read = reader.finish(matches!(end, End::Complete), status_ok);
        let tail = read.tail.take();
        complete_record(
            &mut self.record,
            self.start,
            &mut self.facts,
            read,
            end,
            now,
            settings,
        );
        tail
    }
}

/// Completes the record from what was read: the heart of the accounting.
fn complete_record(
    r: &mut ActivityRecord,
    start: Instant,
    facts: &mut RequestFacts,
    read: Read<'_>,
    end: End,
    now: Instant,
    settings: &Settings,
) {
    let Read {
        obs,
        tracked,
        first_output,
        notes,
        ..
    } = read;
    let status_ok = r.status_code.is_some_and(|s| (200..300).contains(&s));
    // A body that ended cleanly after the protocol's finish and its usage is whole even
    // without the terminal marker (`[DONE]`, `message_stop` …); missing either, it was cut.
    let unmarked = !obs.terminal
        && matches!(end, End::Complete)
        && obs.native_finish.is_some()
        && obs.usage.is_some();
    let ended = obs.terminal || unmarked;
    if unmarked && r.stream {
        r.metadata
            .insert("terminal_marker".into(), Value::from("missing"));
    }

    r.outcome = if !status_ok || obs.error.is_some() {
        Outcome::Error
    } else {
        match &end {
            End::Dropped => Outcome::Cancelled,
            End::Failed(_) => Outcome::Interrupted,
            End::Complete if r.stream && tracked && !ended => Outcome::Interrupted,
            End::Complete => Outcome::Ok,
        }
    };
    r.metadata.append(notes);
    if let End::Failed(message) = &end {
        r.metadata
            .insert("body_error".into(), Value::String(message.clone()));
    }

    r.native_finish_reason = obs.native_finish.take();
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
    r.error = obs.error.take();
    if let Some(id) = obs.request_id.take() {
        r.metadata.insert("request_id".into(), Value::String(id));
    }
    for (k, v) in std::mem::take(&mut obs.notes) {
        r.metadata.entry(k).or_insert(v);
    }

    r.model = obs
        .model
        .take()
        .or(r.model.take())
        .or_else(|| facts.model.take().map(ModelName::into_string));
    r.provider = r.model.as_deref().map(|m| settings.providers.maker(m));

    let streamed = obs.output_chars.div_ceil(CHARS_PER_TOKEN);
    // A stream that stopped before its terminal marker may carry a usage that was only
    // true at its start (Anthropic's `message_start` says 1 output token).
    let partial = tracked && r.stream && !ended;
    if let Some(u) = &obs.usage {
        r.usage_source = UsageSource::Reported;
        r.input_tokens = u.input;
        r.output_tokens = u.output;
        r.cache_read_tokens = u.cache_read;
        r.cache_write_tokens = u.cache_write;
        r.reasoning_tokens = u.reasoning;
        if partial && u.output.is_none_or(|o| o < streamed) {
            r.output_tokens = Some(streamed);
            r.usage_source = UsageSource::Estimated;
            note_estimate(r);
        }
    } else if tracked
        && status_ok
        && (r.stream || r.outcome != Outcome::Ok)
        && (r.outcome != Outcome::Error || obs.output_chars > 0)
    {
        r.usage_source = UsageSource::Estimated;
        // Only a stream's text is counted; a JSON body cut short says nothing countable.
        r.output_tokens = r.stream.then_some(streamed);
        r.input_tokens = facts
            .body
            .as_deref()
            .map(prompt_chars)
            .filter(|&chars| chars > 0)
            .map(|chars| chars.div_ceil(CHARS_PER_TOKEN));
        note_estimate(r);
    }
    r.total_tokens = match (r.input_tokens, r.output_tokens) {
        (Some(i), Some(o)) => Some(i.saturating_add(o)),
        _ => None,
    };
    let terms = std::mem::take(&mut facts.terms);
    // The response's tier wins; the request's stands when the response is silent.
    r.service_tier = obs.service_tier.take().or(terms.service_tier.clone());
    if let Some(u) = &obs.usage {
        bill::usage_details(r, u);
    }
    let stated = obs
        .stated_cost
        .as_ref()
        .and_then(|s| bill::stated_charge(r, s));
    // A cost from half the counts would be a made-up figure: both must be known (or the
    // provider stated its charge).
    if r.total_tokens.is_some() || stated.is_some() {
        let usage = bill::token_usage(r, obs.usage.as_ref(), &terms);
        settings.prices.current().price_record(r, &usage, stated);
    }

    let latency = now.saturating_duration_since(start);
    r.latency_ms = Some(millis(latency));
    let ttft = first_output
        .filter(|_| r.stream)
        .map(|t| t.saturating_duration_since(start));
    r.ttft_ms = ttft.map(millis);
    let generating = latency.saturating_sub(ttft.unwrap_or_default());
    r.speed = match r.output_tokens {
        Some(out) if out > 0 && !generating.is_zero() => {
            Some(out as f64 / generating.as_secs_f64())
        }
        _ => None,
    };
}

/// Says how an estimate was made.
fn note_estimate(r: &mut ActivityRecord) {
    r.metadata.insert(
        "estimate".into(),
        Value::from(format!("characters / {CHARS_PER_TOKEN}")),
    );
}

/// The record's millisecond figures: microsecond resolution.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
