use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::sse::DEFAULT_MAX_LINE;

/// Streams of every wire format (the fixtures the layer's tests replay).
const STREAMS: &[(LlmApi, &[u8])] = &[
    (
        LlmApi::OpenAiChat,
        include_bytes!("../../tests/fixtures/openai-chat_stream_include-usage.sse"),
    ),
    (
        LlmApi::OpenAiChat,
        include_bytes!("../../tests/fixtures/openai-chat_stream_include-usage_tool-calls.sse"),
    ),
    (
        LlmApi::OpenAiChat,
        include_bytes!("../../tests/fixtures/groq_stream_error-event.sse"),
    ),
    (
        LlmApi::OpenAiResponses,
        include_bytes!("../../tests/fixtures/openai-responses_stream_reasoning.sse"),
    ),
    (
        LlmApi::AnthropicMessages,
        include_bytes!("../../tests/fixtures/anthropic_stream_thinking.sse"),
    ),
    (
        LlmApi::GeminiGenerate,
        include_bytes!("../../tests/fixtures/gemini_stream.sse"),
    ),
];

/// The reader [`ResponseReader::new`] makes for a plain SSE stream of `api` (no encoding, no
/// strip), with a line cap of `max_line`.
fn sse_reader(api: LlmApi, max_line: usize) -> ResponseReader {
    ResponseReader {
        mode: Mode::Sse(SseScanner::new(max_line)),
        tracker: protocol::tracker(api),
        obs: Observation::default(),
        strip: None,
        first_output: None,
        notes: Map::new(),
        decoder: None,
        unreadable: false,
    }
}

/// What a finished reader says, comparable across readers.
fn outcome(reader: &mut ResponseReader) -> String {
    let read = reader.finish(true, true);
    format!(
        "{:?} tracked={} first_output={} notes={:?} tail={:?}",
        read.obs,
        read.tracked,
        read.first_output.is_some(),
        read.notes,
        read.tail
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `on_data`'s short way for a plain SSE stream reads what the general way (`read`) reads,
    /// however the stream is framed, with a line cap that some lines exceed or not.
    #[test]
    fn the_short_way_reads_what_the_general_way_reads(
        which in 0..STREAMS.len(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        small_cap in any::<bool>(),
    ) {
        let (api, body) = STREAMS[which];
        let body = Bytes::from_static(body);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        at.sort_unstable();
        at.push(body.len());
        let max_line = if small_cap { 200 } else { DEFAULT_MAX_LINE };
        let (mut short, mut general) = (sse_reader(api, max_line), sse_reader(api, max_line));
        let mut last = 0;
        for i in at {
            let frame = body.slice(last..i);
            last = i;
            prop_assert!(short.on_data(&frame).is_none());
            prop_assert!(general.read(&frame).is_none());
        }
        let (short, general) = (outcome(&mut short), outcome(&mut general));
        prop_assert_eq!(short, general);
    }
}
