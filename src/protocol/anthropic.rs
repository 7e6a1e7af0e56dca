//! Placeholder: the Anthropic tracker is being written.

use super::{Observation, Tracker};
use crate::sse::SseEvent;

/// Reads Anthropic responses.
#[derive(Debug, Default)]
pub(crate) struct Anthropic {}

impl Tracker for Anthropic {
    fn on_event(&mut self, _event: &SseEvent<'_>, _obs: &mut Observation) {}
    fn on_json(&mut self, _body: &[u8], _obs: &mut Observation) {}
}
