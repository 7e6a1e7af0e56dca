//! The words providers document for a record's `native_finish_reason` and `service_tier`,
//! kept as `&'static str`: a record borrows one of them instead of copying what the response
//! said (an allocation per request, and its free on the writer's thread).

use std::borrow::Cow;

/// The words, and `known`: a `match` over them (a comparison by length first, not a scan).
macro_rules! words {
    ($($word:literal,)*) => {
        /// Finish reasons (OpenAI chat and Responses, Anthropic, Gemini) and service tiers
        /// (OpenAI, Anthropic, Gemini), as the providers spell them.
        #[cfg(test)]
        const WORDS: &[&str] = &[$($word,)*];

        /// The word `text` is, if it is one.
        fn known(text: &str) -> Option<&'static str> {
            match text {
                $($word => Some($word),)*
                _ => None,
            }
        }
    };
}

words! {
    // OpenAI chat completions.
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
    // OpenAI Responses: the status, and `incomplete_details.reason`.
    "completed",
    "incomplete",
    "failed",
    "cancelled",
    "in_progress",
    "max_output_tokens",
    // Anthropic.
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
    // Gemini.
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
    "IMAGE_SAFETY",
    "UNEXPECTED_TOOL_CALL",
    "FINISH_REASON_UNSPECIFIED",
    // Service tiers.
    "default",
    "auto",
    "flex",
    "priority",
    "scale",
    "standard",
    "batch",
}

/// `text` as a record keeps it: a provider's documented word borrowed, anything else copied.
pub(crate) fn word(text: &str) -> Cow<'static, str> {
    word_of(Cow::Borrowed(text))
}

/// [`word`] of a value that may already be owned: an unknown word is kept as it is (moved,
/// not copied, when it is owned).
pub(crate) fn word_of(text: Cow<'_, str>) -> Cow<'static, str> {
    match known(&text) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(text.into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_words_are_borrowed_and_others_copied_verbatim() {
        for w in WORDS {
            assert!(matches!(word(w), Cow::Borrowed(b) if b == *w), "{w}");
            assert!(matches!(word_of(Cow::Owned(w.to_string())), Cow::Borrowed(b) if b == *w));
        }
        // Case and spelling are the provider's: only an exact match is borrowed.
        for other in ["Stop", "stop ", "", "MAX_TOKENS_", "end-turn", "ünknown"] {
            assert!(
                matches!(word(other), Cow::Owned(ref o) if o == other),
                "{other}"
            );
            assert!(matches!(word_of(Cow::Borrowed(other)), Cow::Owned(ref o) if o == other));
        }
    }

    #[test]
    fn the_list_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        assert!(WORDS.iter().all(|w| seen.insert(*w)));
    }
}
