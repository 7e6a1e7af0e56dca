//! Removes from an OpenAI chat stream what the client did not ask for.
//!
//! When the layer added `stream_options.include_usage` to a request, the provider answers with
//! one extra usage-only chunk (`"choices":[]` and a `usage` object) and, in newer API versions,
//! a `"usage":null` member on every other chunk. [`Strip`] removes both so that the client
//! receives the bytes it would have received without the rewrite.
//!
//! This is the one place the layer changes response bytes, so it is the one place it copies
//! them: a stripped stream is re-assembled per frame, holding back the bytes of an event until
//! the event is complete (an event may span frames). Other streams are never copied.

use bytes::Bytes;
use memchr::memmem;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The state of a stripped stream.
#[derive(Debug, Default)]
pub(crate) struct Strip {
    /// Bytes received but not yet released (the current, incomplete event).
    pending: Vec<u8>,
    /// Where the current frame starts in `pending`.
    base: usize,
    /// Bytes of `pending` already decided.
    decided: usize,
    /// What to send for the current frame.
    out: Vec<u8>,
}

impl Strip {
    /// A frame arrives: its bytes are held until the events they complete are decided.
    pub(crate) fn begin(&mut self, frame: &[u8]) {
        self.base = self.pending.len();
        self.pending.extend_from_slice(frame);
    }

    /// An event ended at `end` (an offset into the current frame, from the SSE scanner).
    pub(crate) fn event(&mut self, data: &[u8], end: usize) {
        let end = (self.base + end).min(self.pending.len());
        if end < self.decided {
            return;
        }
        let segment = &self.pending[self.decided..end];
        if !is_usage_only(data) {
            push_without_null_usage(&mut self.out, segment);
        }
        self.decided = end;
    }

    /// The frame is scanned: the decided bytes to send now.
    pub(crate) fn end_frame(&mut self) -> Bytes {
        self.pending.drain(..self.decided);
        self.decided = 0;
        Bytes::from(std::mem::take(&mut self.out))
    }

    /// End of stream: whatever is still held (a last event without its blank line) is sent
    /// as it is.
    pub(crate) fn finish(&mut self) -> Bytes {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&self.pending[self.decided..]);
        self.pending.clear();
        self.decided = 0;
        Bytes::from(out)
    }
}

/// A chunk with no choices and a usage object: the one the rewrite asked for.
fn is_usage_only(data: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
    }
    if memmem::find(data, b"\"usage\"").is_none() {
        return false;
    }
    match serde_json::from_slice::<Chunk>(data) {
        Ok(c) => c.usage.is_some() && c.choices.is_some_and(|c| c.is_empty()),
        Err(_) => false,
    }
}

/// Copies `segment` without the `"usage":null` member that include_usage adds to chunks.
fn push_without_null_usage(out: &mut Vec<u8>, segment: &[u8]) {
    const MEMBER: &[u8] = b"\"usage\":null";
    let mut rest = segment;
    while let Some(i) = memmem::find(rest, MEMBER) {
        let after = &rest[i + MEMBER.len()..];
        if i > 0 && rest[i - 1] == b',' {
            out.extend_from_slice(&rest[..i - 1]);
            rest = after;
        } else if after.first() == Some(&b',') {
            out.extend_from_slice(&rest[..i]);
            rest = &after[1..];
        } else {
            out.extend_from_slice(&rest[..i + MEMBER.len()]);
            rest = after;
        }
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_usage_members_are_removed_wherever_they_stand() {
        let mut out = Vec::new();
        push_without_null_usage(&mut out, br#"data: {"a":1,"usage":null}"#);
        assert_eq!(out, br#"data: {"a":1}"#);
        out.clear();
        push_without_null_usage(&mut out, br#"{"usage":null,"a":1}"#);
        assert_eq!(out, br#"{"a":1}"#);
        out.clear();
        push_without_null_usage(&mut out, br#"{"usage":null}"#);
        assert_eq!(out, br#"{"usage":null}"#);
    }

    #[test]
    fn usage_only_chunk_is_recognised_and_moderation_chunk_is_not() {
        assert!(is_usage_only(
            br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(!is_usage_only(br#"{"choices":[],"moderation":{}}"#));
        assert!(!is_usage_only(
            br#"{"choices":[{"index":0}],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(!is_usage_only(br#"{"choices":[],"usage":null}"#));
    }
}
