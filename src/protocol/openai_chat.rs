//! Placeholder: the OpenAiChat tracker is being written.

use super::{Observation, Tracker};
use crate::sse::SseEvent;

/// Reads OpenAiChat responses.
#[derive(Debug, Default)]
pub(crate) struct OpenAiChat {}

impl Tracker for OpenAiChat {
    fn on_event(&mut self, _event: &SseEvent<'_>, _obs: &mut Observation) {}
    fn on_json(&mut self, _body: &[u8], _obs: &mut Observation) {}
}

impl OpenAiChat {
    /// The tracker for `/v1/embeddings` (input tokens only; output is a known 0).
    pub(crate) fn embeddings() -> Self {
        OpenAiChat {}
    }
}
