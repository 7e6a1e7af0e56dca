//! Placeholder: the Gemini tracker is being written.

use super::{Observation, Tracker};
use crate::sse::SseEvent;

/// Reads Gemini responses.
#[derive(Debug, Default)]
pub(crate) struct Gemini {}

impl Tracker for Gemini {
    fn on_event(&mut self, _event: &SseEvent<'_>, _obs: &mut Observation) {}
    fn on_json(&mut self, _body: &[u8], _obs: &mut Observation) {}
}
