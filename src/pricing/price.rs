//! [`ModelPrice`] and [`TokenUsage`]: one model's per-token rates and the exact cost of a usage.

use super::*;

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

/// Prompts longer than this many tokens are priced with the `*_above_200k` tier, when the model
/// has one (Gemini 2.5 Pro, Claude Sonnet 4 with a 1M context …).
const TIER_THRESHOLD: u64 = 200_000;

/// Per-token USD prices of one model.
///
/// A missing cache price falls back to the input price, a missing reasoning price to the output
/// price, and each missing `*_above_200k` price to its base price.
///
/// ```
/// use rust_decimal::Decimal;
/// use tower_activity::pricing::{ModelPrice, TokenUsage};
///
/// let price = ModelPrice::new(Decimal::new(3, 6), Decimal::new(15, 6)); // $3 / $15 per 1M
/// let usage = TokenUsage { input: 1_000, output: 100, ..TokenUsage::default() };
/// assert_eq!(price.cost(&usage), Some(Decimal::new(45, 4))); // $0.0045
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    /// USD per uncached prompt token (`input_cost_per_token`).
    pub input: Decimal,
    /// USD per generated token (`output_cost_per_token`).
    pub output: Decimal,
    /// USD per prompt token read from a cache (`cache_read_input_token_cost`).
    pub cache_read: Option<Decimal>,
    /// USD per prompt token written to a cache (`cache_creation_input_token_cost`).
    pub cache_write: Option<Decimal>,
    /// USD per reasoning token (`output_cost_per_reasoning_token`).
    pub reasoning: Option<Decimal>,
    /// `input` for prompts above 200k tokens (`input_cost_per_token_above_200k_tokens`).
    pub input_above_200k: Option<Decimal>,
    /// `output` for prompts above 200k tokens (`output_cost_per_token_above_200k_tokens`).
    pub output_above_200k: Option<Decimal>,
    /// `cache_read` for prompts above 200k tokens
    /// (`cache_read_input_token_cost_above_200k_tokens`).
    pub cache_read_above_200k: Option<Decimal>,
    /// `cache_write` for prompts above 200k tokens
    /// (`cache_creation_input_token_cost_above_200k_tokens`).
    pub cache_write_above_200k: Option<Decimal>,
}

/// The prices that apply to one request, after tier selection and fallbacks.
struct Rates {
    input: Decimal,
    output: Decimal,
    cache_read: Decimal,
    cache_write: Decimal,
    reasoning: Decimal,
}

impl ModelPrice {
    /// The LiteLLM field names this crate reads, in the order of [`ModelPrice`]'s fields.
    ///
    /// ```
    /// assert_eq!(tower_activity::pricing::ModelPrice::LITELLM_FIELDS[0], "input_cost_per_token");
    /// ```
    pub const LITELLM_FIELDS: [&'static str; 9] = [
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
        "output_cost_per_reasoning_token",
        "input_cost_per_token_above_200k_tokens",
        "output_cost_per_token_above_200k_tokens",
        "cache_read_input_token_cost_above_200k_tokens",
        "cache_creation_input_token_cost_above_200k_tokens",
    ];

    /// A price with only input and output prices (every other price falls back to these).
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// let p = tower_activity::pricing::ModelPrice::new(Decimal::new(1, 6), Decimal::new(2, 6));
    /// assert_eq!(p.cache_read, None);
    /// ```
    pub fn new(input: Decimal, output: Decimal) -> Self {
        Self {
            input,
            output,
            cache_read: None,
            cache_write: None,
            reasoning: None,
            input_above_200k: None,
            output_above_200k: None,
            cache_read_above_200k: None,
            cache_write_above_200k: None,
        }
    }

    /// The exact cost of `usage` in USD:
    /// `(input − cache_read − cache_write)·p_in + cache_read·p_cache_read +
    /// cache_write·p_cache_write + (output − reasoning)·p_out + reasoning·p_reasoning`.
    ///
    /// Parts larger than their total (real streams do that) make the remainder 0, never
    /// negative. Above 200k prompt tokens the `*_above_200k` prices apply. `None` only when the
    /// result cannot be represented exactly (far beyond realistic token counts).
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::pricing::{ModelPrice, TokenUsage};
    ///
    /// let mut p = ModelPrice::new(Decimal::new(2, 6), Decimal::new(8, 6));
    /// p.cache_read = Some(Decimal::new(5, 7));
    /// let usage = TokenUsage { input: 10, cache_read: 4, output: 1, ..TokenUsage::default() };
    /// // 6·0.000002 + 4·0.0000005 + 1·0.000008
    /// assert_eq!(p.cost(&usage), Some(Decimal::new(22, 6)));
    /// ```
    pub fn cost(&self, usage: &TokenUsage) -> Option<Decimal> {
        let r = self.rates(usage.input);
        let uncached = usage
            .input
            .saturating_sub(usage.cache_read)
            .saturating_sub(usage.cache_write);
        let visible = usage.output.saturating_sub(usage.reasoning);
        let parts = [
            (uncached, r.input),
            (usage.cache_read, r.cache_read),
            (usage.cache_write, r.cache_write),
            (visible, r.output),
            (usage.reasoning, r.reasoning),
        ];
        let mut total = Decimal::ZERO;
        for (tokens, price) in parts {
            if tokens > 0 {
                total = exact_add(total, exact_mul(tokens, price)?)?;
            }
        }
        Some(total.normalize())
    }

    /// The prices for a prompt of `input_tokens`: the 200k tier when it applies, then the
    /// fallbacks (cache → input, reasoning → output).
    fn rates(&self, input_tokens: u64) -> Rates {
        let tiered = input_tokens > TIER_THRESHOLD;
        let pick = |above: Option<Decimal>, base: Option<Decimal>| {
            if tiered { above.or(base) } else { base }
        };
        let input = pick(self.input_above_200k, None).unwrap_or(self.input);
        let output = pick(self.output_above_200k, None).unwrap_or(self.output);
        Rates {
            input,
            output,
            cache_read: pick(self.cache_read_above_200k, self.cache_read).unwrap_or(input),
            cache_write: pick(self.cache_write_above_200k, self.cache_write).unwrap_or(input),
            // LiteLLM has no reasoning tier: an explicit reasoning price holds at any length.
            reasoning: self.reasoning.unwrap_or(output),
        }
    }
}

/// `tokens · price`, `None` if `rust_decimal` would have to drop digits (it rounds silently
/// when a product needs more than 96 bits; a cost must never be rounded).
pub(super) fn exact_mul(tokens: u64, price: Decimal) -> Option<Decimal> {
    let product = Decimal::from(tokens).checked_mul(price)?;
    (product.scale() == price.scale()).then_some(product)
}

/// `a + b`, `None` if the sum would lose digits (same reason as [`exact_mul`]).
fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = a.checked_add(b)?;
    (sum.scale() == a.scale().max(b.scale())).then_some(sum)
}
