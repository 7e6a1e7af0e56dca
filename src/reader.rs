//! Reads a response body for accounting: an SSE stream scanned frame by frame, or a JSON body
//! kept (as refcounted frames, not copies) up to a cap and parsed at its end. What the
//! wire format's [`Tracker`] saw becomes an [`Observation`]; turning that into a record is
//! `account.rs`'s job.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use crate::buf::Frames;
use crate::decode::Decoder;
use crate::protocol::{self, Observation, Tracker};
use crate::record::LlmApi;
use crate::settings::Settings;
use crate::sse::{SseEvent, SseScanner};
use crate::strip::Strip;

/// How the body is read.
#[derive(Debug)]
enum Mode {
    /// An SSE stream, scanned frame by frame.
    Sse(SseScanner),
    /// A JSON body, kept up to `max` bytes.
    Json { frames: Frames, max: usize },
    /// Nothing to read (unknown API, encoded body, over the cap).
    Off,
}

/// What reading a whole body gave (borrowed from the reader, which stays in place).
#[derive(Debug)]
pub(crate) struct Read<'a> {
    /// What the tracker saw.
    pub(crate) obs: &'a mut Observation,
    /// A wire format was tracked (the API is known and the body could be read).
    pub(crate) tracked: bool,
    /// When the first event carrying output arrived.
    pub(crate) first_output: Option<Instant>,
    /// The reader's own notes for the record's `metadata` (caps, encodings).
    pub(crate) notes: &'a mut Map<String, Value>,
    /// Bytes a stripped stream still holds, which the body must send before it ends.
    pub(crate) tail: Option<Bytes>,
}

/// The response side's reader, fed by [`ActivityBody`](crate::ActivityBody) through the guard.
pub(crate) struct ResponseReader {
    mode: Mode,
    tracker: Option<Box<dyn Tracker>>,
    obs: Observation,
    /// Boxed, as is `decoder`: both are rare and large, and the reader lives in the exchange's
    /// box, which must stay small enough for the allocator's per-thread cache.
    strip: Option<Box<Strip>>,
    first_output: Option<Instant>,
    notes: Map<String, Value>,
    /// Decodes an encoded body's copy for the reader (feature `decode`).
    decoder: Option<Box<Decoder>>,
    /// The body could not be read (an encoding the layer cannot decode, or corrupt data):
    /// nothing about it is known, so nothing is estimated and no marker is expected.
    unreadable: bool,
}

impl std::fmt::Debug for ResponseReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseReader")
            .field("mode", &self.mode)
            .field("obs", &self.obs)
            .finish_non_exhaustive()
    }
}

/// Whether `headers` announce an SSE stream.
pub(crate) fn is_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("text/event-stream"))
        })
}

impl ResponseReader {
    /// A reader for a response of `api` with `status` and `headers` (`sse`: they announce an
    /// SSE stream, see [`is_sse`]); `injected` when the layer asked for usage the client did
    /// not (the stream is stripped of it).
    pub(crate) fn new(
        api: LlmApi,
        status: StatusCode,
        headers: &HeaderMap,
        sse: bool,
        injected: bool,
        settings: &Settings,
    ) -> Self {
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .filter(|e| !e.eq_ignore_ascii_case("identity"));
        let tracker = protocol::tracker(api);
        let mut notes = Map::new();
        let decoder = encoding.and_then(Decoder::new).map(Box::new);
        if let Some(encoding) = encoding {
            let key = if decoder.is_some() {
                "content_encoding"
            } else {
                "usage_unavailable"
            };
            notes.insert(
                key.into(),
                Value::String(format!("content-encoding: {encoding}")),
            );
        }
        let mode = if encoding.is_some() && decoder.is_none() {
            Mode::Off
        } else if sse && tracker.is_some() {
            Mode::Sse(SseScanner::new(settings.max_sse_line))
        } else if tracker.is_some() || !status.is_success() {
            Mode::Json {
                frames: Frames::default(),
                max: settings.max_response_body,
            }
        } else {
            Mode::Off
        };
        // Compressed bytes cannot be edited: an encoded stream reaches the client as sent.
        let strip = (injected && decoder.is_none() && matches!(mode, Mode::Sse(_)))
            .then(|| Box::new(Strip::new(settings.max_sse_line)));
        ResponseReader {
            mode,
            tracker,
            obs: Observation::default(),
            strip,
            first_output: None,
            notes,
            unreadable: encoding.is_some() && decoder.is_none(),
            decoder,
        }
    }

    /// Whether the layer rewrites this response's bytes (then `Content-Length` must go).
    pub(crate) fn rewrites(&self) -> bool {
        self.strip.is_some()
    }

    /// One data frame. Returns the bytes to send instead when the stream is being stripped.
    ///
    /// An SSE stream that is neither decoded nor stripped (nearly every one) is scanned here,
    /// in line, as [`read`](Self::read) would scan it; every other body goes the general way.
    #[inline]
    pub(crate) fn on_data(&mut self, data: &Bytes) -> Option<Bytes> {
        if let (Mode::Sse(scanner), Some(tracker), None, None) = (
            &mut self.mode,
            self.tracker.as_deref_mut(),
            &self.decoder,
            &self.strip,
        ) {
            let (obs, first) = (&mut self.obs, &mut self.first_output);
            scanner.feed(data, &mut |event: &SseEvent<'_>, _| {
                let started = obs.output_started;
                tracker.on_event(event, obs);
                if !started && obs.output_started {
                    *first = Some(Instant::now());
                }
            });
            return None;
        }
        self.on_other_data(data)
    }

    /// [`on_data`](Self::on_data) for any body but a plain SSE stream.
    #[inline(never)]
    fn on_other_data(&mut self, data: &Bytes) -> Option<Bytes> {
        // The decoder is boxed: taking it out and putting it back moves a pointer.
        let Some(mut decoder) = self.decoder.take() else {
            return self.read(data);
        };
        let fed = decoder.feed(data, &mut |plain| {
            self.read(&plain);
        });
        match fed {
            // Nothing more to read (e.g. a JSON body over its cap): stop decoding.
            Ok(()) if matches!(self.mode, Mode::Off) => {}
            Ok(()) => self.decoder = Some(decoder),
            Err(e) => self.undecodable(&e),
        }
        None
    }

    /// The decoder refused the body (corrupt, or ended short of its encoding's end): nothing
    /// more is read, nothing read is kept, and the record says why instead of counting
    /// garbage.
    fn undecodable(&mut self, error: &std::io::Error) {
        let encoding = self.notes.remove("content_encoding");
        let encoding = encoding
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("content-encoding");
        self.notes.insert(
            "usage_unavailable".into(),
            Value::String(format!("{encoding} (cannot decode: {error})")),
        );
        self.obs = Observation::default();
        self.mode = Mode::Off;
        self.unreadable = true;
    }

    /// Reads one piece of the (decoded) body.
    fn read(&mut self, data: &Bytes) -> Option<Bytes> {
        match &mut self.mode {
            Mode::Sse(scanner) => {
                let obs = &mut self.obs;
                let first = &mut self.first_output;
                let mut tracker = self.tracker.as_deref_mut();
                // Returns what the tracker knows of the event being the usage-only chunk.
                let mut on_event = |event: &SseEvent<'_>| {
                    let t = tracker.as_mut()?;
                    let started = obs.output_started;
                    t.on_event(event, obs);
                    if !started && obs.output_started {
                        *first = Some(Instant::now());
                    }
                    obs.usage_only.take()
                };
                match self.strip.as_mut() {
                    Some(strip) => Some(strip.feed(scanner, data, &mut on_event)),
                    None => {
                        scanner.feed(data, &mut |event: &SseEvent<'_>, _| {
                            on_event(event);
                        });
                        None
                    }
                }
            }
            Mode::Json { frames, max } => {
                if frames.len() + data.len() > *max {
                    self.notes
                        .insert("response_body".into(), Value::from("over_cap"));
                    self.mode = Mode::Off;
                } else {
                    frames.push(data.clone());
                }
                None
            }
            Mode::Off => None,
        }
    }

    /// The body ended. `complete` when it reached its end (not an error or a drop): then the
    /// scanner's last event, or the whole JSON body, is read. `status_ok` picks the 2xx reader
    /// or the error-body reader for JSON.
    pub(crate) fn finish(&mut self, complete: bool, status_ok: bool) -> Read<'_> {
        if let (true, Some(mut decoder)) = (complete, self.decoder.take()) {
            let done = decoder.finish(&mut |plain| {
                self.read(&plain);
            });
            // A body that ended without its encoding's end (a gzip trailer, whose checksum
            // also catches corrupt data that inflated without error) cannot be vouched for.
            if let Err(e) = done {
                self.undecodable(&e);
            }
        }
        let tail = if complete {
            self.read_rest(status_ok)
        } else {
            None
        };
        if !self.unreadable {
            if let Some(t) = self.tracker.as_deref_mut() {
                t.finish(&mut self.obs);
            }
        }
        // A hint about the last event for the strip (which takes it), not an observation.
        self.obs.usage_only = None;
        Read {
            obs: &mut self.obs,
            tracked: self.tracker.is_some() && !self.unreadable,
            first_output: self.first_output,
            notes: &mut self.notes,
            tail: tail.filter(|t| !t.is_empty()),
        }
    }

    /// End of stream: the scanner's last event, or the whole JSON body.
    fn read_rest(&mut self, status_ok: bool) -> Option<Bytes> {
        match std::mem::replace(&mut self.mode, Mode::Off) {
            Mode::Sse(mut scanner) => {
                let obs = &mut self.obs;
                let mut tracker = self.tracker.as_deref_mut();
                let mut on_event = |event: &SseEvent<'_>| {
                    tracker.as_mut()?.on_event(event, obs);
                    obs.usage_only.take()
                };
                let tail = match self.strip.as_mut() {
                    Some(strip) => Some(strip.finish(&mut scanner, &mut on_event)),
                    None => {
                        scanner.finish(&mut |event: &SseEvent<'_>, _| {
                            on_event(event);
                        });
                        None
                    }
                };
                if scanner.overflowed() > 0 {
                    self.notes.insert(
                        "sse_lines_skipped".into(),
                        Value::from(scanner.overflowed()),
                    );
                }
                tail
            }
            Mode::Json { mut frames, .. } => {
                let body = frames.take();
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
            Mode::Off => None,
        }
    }
}

#[cfg(test)]
mod tests;
