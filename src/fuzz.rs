//! Entry points for `cargo fuzz` (compiled only with `--cfg fuzzing`, which cargo-fuzz sets).
//! Not part of the public API.
//!
//! Each function feeds untrusted bytes to the parsers the way the layer does and checks the
//! invariants that must hold for *any* input: no panic, and any framing of the same SSE bytes
//! gives the same observation.

use crate::protocol::{self, Observation, parse_error_body};
use crate::record::LlmApi;
use crate::splice::include_usage_edit;
use crate::sse::{SseEvent, SseScanner};
use crate::strip::Strip;

/// The five wire formats a fuzz input can pick with its first byte.
const APIS: [LlmApi; 5] = [
    LlmApi::OpenAiChat,
    LlmApi::OpenAiEmbeddings,
    LlmApi::OpenAiResponses,
    LlmApi::AnthropicMessages,
    LlmApi::GeminiGenerate,
];

fn observe(api: LlmApi, frames: &[&[u8]], max_line: usize) -> String {
    let mut tracker = protocol::tracker(api).expect("a known API");
    let mut obs = Observation::default();
    let mut scanner = SseScanner::new(max_line);
    for frame in frames {
        scanner.feed(frame, &mut |event: &SseEvent<'_>, _| {
            tracker.on_event(event, &mut obs)
        });
    }
    scanner.finish(&mut |event: &SseEvent<'_>, _| tracker.on_event(event, &mut obs));
    tracker.finish(&mut obs);
    format!("{obs:?} overflowed={}", scanner.overflowed())
}

/// `input[0]` picks the API, `input[1]` the frame size (0 = one frame) and a small line cap
/// when odd; the rest is the stream. The observation of the framed stream must equal the
/// observation of the whole stream.
pub fn sse(input: &[u8]) {
    let [pick, split, body @ ..] = input else {
        return;
    };
    let api = APIS[*pick as usize % APIS.len()];
    let max_line = if split & 1 == 1 { 64 } else { 1 << 20 };
    let size = (*split >> 1) as usize;
    let whole = observe(api, &[body], max_line);
    let frames: Vec<&[u8]> = if size == 0 {
        body.iter().map(std::slice::from_ref).collect()
    } else {
        body.chunks(size).collect()
    };
    assert_eq!(
        whole,
        observe(api, &frames, max_line),
        "framing changed the record"
    );
}

/// `input[0]` picks the API; the rest is a whole JSON body (2xx and error readers both).
pub fn json(input: &[u8]) {
    let [pick, body @ ..] = input else {
        return;
    };
    let api = APIS[*pick as usize % APIS.len()];
    let mut tracker = protocol::tracker(api).expect("a known API");
    tracker.on_json(body, &mut Observation::default());
    let _ = parse_error_body(body);
}

/// What the strip lets out of `frames`: every frame's bytes and the tail, concatenated.
fn stripped(frames: &[&[u8]], max_line: usize) -> Vec<u8> {
    let mut scanner = SseScanner::new(max_line);
    let mut strip = Strip::new(max_line);
    let mut out = Vec::new();
    for frame in frames {
        out.extend_from_slice(&strip.feed(&mut scanner, frame, &mut |_| None));
    }
    out.extend_from_slice(&strip.finish(&mut scanner, &mut |_| None));
    out
}

/// `input[0]` picks the framing and the line cap as for [`sse`]; the rest is a stream the
/// layer asked usage for. The strip must not panic, must let out no more than came in, and
/// must let out the same bytes however the stream is framed.
pub fn strip(input: &[u8]) {
    let [split, body @ ..] = input else {
        return;
    };
    let max_line = if split & 1 == 1 { 64 } else { 1 << 20 };
    let size = (*split >> 1) as usize;
    let whole = stripped(&[body], max_line);
    assert!(whole.len() <= body.len(), "the strip added bytes");
    let frames: Vec<&[u8]> = if size == 0 {
        body.iter().map(std::slice::from_ref).collect()
    } else {
        body.chunks(size).collect()
    };
    assert_eq!(
        whole,
        stripped(&frames, max_line),
        "framing changed the bytes"
    );
}

/// Arbitrary bytes as a request body: the include_usage edit stays inside the body.
pub fn splice(input: &[u8]) {
    if let Some(edit) = include_usage_edit(input) {
        assert!(edit.at + edit.remove <= input.len());
        let out = edit.apply(input);
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok());
    }
}
