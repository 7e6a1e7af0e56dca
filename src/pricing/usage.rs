//! [`TokenUsage`]: what a request used, in the terms the price table charges for.

use super::{PricingTier, SearchContextSize};

/// What to price: token counts with the record's semantics (`input` includes cache reads and
/// writes, `output` includes reasoning), their parts by modality and cache lifetime, server-side
/// tool calls, and the terms they were served on.
///
/// Every part is a part of a total: `cache_write_1h` of `cache_write`; `input_audio`,
/// `input_image`, `input_video` of `input` (cached or not); `cache_read_audio`,
/// `cache_read_image`, `cache_read_video` of `cache_read` and of their modality;
/// `output_audio`, `output_image` of `output`. Parts larger than their total (real streams
/// report such counts) are cut to what is left, never priced twice.
///
/// ```
/// use tower_activity::pricing::TokenUsage;
///
/// let usage = TokenUsage { input: 1_000, output: 10, input_audio: 400, ..TokenUsage::default() };
/// assert_eq!(usage.cache_read, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// All prompt tokens.
    pub input: u64,
    /// All generated tokens.
    pub output: u64,
    /// Prompt tokens read from a cache.
    pub cache_read: u64,
    /// Prompt tokens written to a cache (any lifetime).
    pub cache_write: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
    /// Of `cache_write`, the tokens written for 1 hour (the rest: the default lifetime).
    pub cache_write_1h: u64,
    /// Audio prompt tokens.
    pub input_audio: u64,
    /// Image prompt tokens.
    pub input_image: u64,
    /// Video prompt tokens.
    pub input_video: u64,
    /// Audio prompt tokens read from a cache.
    pub cache_read_audio: u64,
    /// Image prompt tokens read from a cache.
    pub cache_read_image: u64,
    /// Video prompt tokens read from a cache (priced as cached text; counted so that they are
    /// not priced as uncached video).
    pub cache_read_video: u64,
    /// Generated audio tokens.
    pub output_audio: u64,
    /// Generated image tokens.
    pub output_image: u64,
    /// Prompt tokens of server-side tool results, not part of `input` (Gemini's
    /// `toolUsePromptTokenCount`); priced as uncached input.
    pub tool_use_input: u64,
    /// Server-side web searches.
    pub web_searches: u64,
    /// The search context size the request set for its web search tool.
    pub search_context: SearchContextSize,
    /// The priced service tier that served the request (`None`: standard).
    pub tier: Option<PricingTier>,
}
