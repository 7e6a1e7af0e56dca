//! Placeholder: the price table is being written.

use rust_decimal::Decimal;

/// Token counts to price (the record's semantics: `input` includes cache reads and writes,
/// `output` includes reasoning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// All prompt tokens.
    pub input: u64,
    /// All generated tokens.
    pub output: u64,
    /// Prompt tokens read from a cache.
    pub cache_read: u64,
    /// Prompt tokens written to a cache.
    pub cache_write: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
}

/// Per-token USD prices of models.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {}

impl PriceTable {
    /// The cost of `usage` on `model`, `None` when the model has no price.
    pub fn cost(&self, _model: &str, _usage: &TokenUsage) -> Option<Decimal> {
        None
    }
}
