//! [`ModelPrice`]: one model's prices, and which of them applies to a request (service tier,
//! long-context tier, fallbacks).

use std::collections::BTreeMap;
use std::ops::Bound;

use rust_decimal::Decimal;

use super::{PricingTier, Rate, RateKey, SearchContextSize, TokenUsage};

/// USD per web search, by search context size (LiteLLM's `search_context_cost_per_query`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPrice {
    /// `search_context_size_low`.
    pub low: Option<Decimal>,
    /// `search_context_size_medium`.
    pub medium: Option<Decimal>,
    /// `search_context_size_high`.
    pub high: Option<Decimal>,
}

impl SearchPrice {
    /// The price of one search of `size`; a size the table does not list is priced at
    /// `medium`, then at any size it lists (LiteLLM lists all three or none).
    pub fn per_search(&self, size: SearchContextSize) -> Option<Decimal> {
        let exact = match size {
            SearchContextSize::Low => self.low,
            SearchContextSize::Medium => self.medium,
            SearchContextSize::High => self.high,
        };
        exact.or(self.medium).or(self.low).or(self.high)
    }
}

/// Per-token USD prices of one model: the standard input and output prices, every other
/// LiteLLM per-token price it lists ([`RateKey`]: cache, reasoning, audio, image, long-context
/// and service-tier variants), and the price of a web search.
///
/// Which price applies ([`ModelPrice::rate`]), following LiteLLM's cost calculator:
/// - **Service tier**: `{rate}_{tier}` when listed, else the standard `{rate}`.
/// - **Long context**: the highest `{rate}_above_{N}_tokens` threshold the prompt exceeds
///   (strictly) applies, its `_{tier}` variant first; a rate without a threshold of its own
///   keeps its (tiered) price.
/// - **Fallbacks**: a rate the model does not list is priced as [`Rate::fallback`] (cache
///   reads and writes, audio, image and video input → input; 1-hour writes → 5-minute writes;
///   cached audio and images → cache reads; reasoning, audio and image output → output).
/// - **Reasoning** under a tier: the tier's reasoning price, else the tier's output price when
///   the model lists one, else the standard reasoning price, else output.
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
    /// USD per server-side web search (`search_context_cost_per_query`).
    pub web_search: Option<SearchPrice>,
    /// Every other listed per-token price.
    rates: BTreeMap<RateKey, Decimal>,
    /// Whether a price in `rates` has a long-context threshold: most models have none, and
    /// then pricing a request looks for no threshold (a range walk of `rates` per part).
    long_context: bool,
}

impl ModelPrice {
    /// A price with only input and output prices (every other price falls back to these).
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::pricing::{ModelPrice, Rate, RateKey};
    /// let p = ModelPrice::new(Decimal::new(1, 6), Decimal::new(2, 6));
    /// assert_eq!(p.price(RateKey::base(Rate::CacheRead)), None);
    /// assert_eq!(p.price(RateKey::base(Rate::Input)), Some(Decimal::new(1, 6)));
    /// ```
    pub fn new(input: Decimal, output: Decimal) -> Self {
        Self {
            input,
            output,
            web_search: None,
            rates: BTreeMap::new(),
            long_context: false,
        }
    }

    /// The price listed under `key` exactly, without fallbacks.
    pub fn price(&self, key: RateKey) -> Option<Decimal> {
        match key {
            k if k == RateKey::base(Rate::Input) => Some(self.input),
            k if k == RateKey::base(Rate::Output) => Some(self.output),
            k => self.rates.get(&k).copied(),
        }
    }

    /// Lists `price` under `key`, returning the price it replaces.
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::pricing::{ModelPrice, Rate, RateKey};
    ///
    /// let mut p = ModelPrice::new(Decimal::new(1, 6), Decimal::new(2, 6));
    /// p.set_price(RateKey::parse("cache_read_input_token_cost").unwrap(), Decimal::new(1, 7));
    /// assert_eq!(p.price(RateKey::base(Rate::CacheRead)), Some(Decimal::new(1, 7)));
    /// ```
    pub fn set_price(&mut self, key: RateKey, price: Decimal) -> Option<Decimal> {
        match key {
            k if k == RateKey::base(Rate::Input) => Some(std::mem::replace(&mut self.input, price)),
            k if k == RateKey::base(Rate::Output) => {
                Some(std::mem::replace(&mut self.output, price))
            }
            k => {
                // Keys are never removed, so the flag never has to be cleared.
                self.long_context |= k.above.is_some();
                self.rates.insert(k, price)
            }
        }
    }

    /// `self` with `price` listed under `key` (see [`set_price`](Self::set_price)).
    pub fn with_price(mut self, key: RateKey, price: Decimal) -> Self {
        self.set_price(key, price);
        self
    }

    /// Every listed price and its key (input and output included), in key order.
    pub fn prices(&self) -> impl Iterator<Item = (RateKey, Decimal)> + '_ {
        [
            (RateKey::base(Rate::Input), self.input),
            (RateKey::base(Rate::Output), self.output),
        ]
        .into_iter()
        .chain(self.rates.iter().map(|(k, v)| (*k, *v)))
    }

    /// Whether the crate reads the LiteLLM field `key` (a per-token price it can trigger, or
    /// the web search price): what `gen_prices` keeps.
    ///
    /// ```
    /// use tower_activity::pricing::ModelPrice;
    /// assert!(ModelPrice::reads_litellm_key("cache_creation_input_token_cost_above_1hr"));
    /// assert!(ModelPrice::reads_litellm_key("search_context_cost_per_query"));
    /// assert!(!ModelPrice::reads_litellm_key("output_cost_per_token_batches"));
    /// ```
    pub fn reads_litellm_key(key: &str) -> bool {
        key == super::parse::SEARCH_KEY || RateKey::parse(key).is_some()
    }

    /// The price per token of `rate` for a request on `tier` with a prompt of `prompt_tokens`
    /// (the rules on [`ModelPrice`]).
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::pricing::{ModelPrice, PricingTier, Rate, RateKey};
    ///
    /// let key = |k| RateKey::parse(k).unwrap();
    /// let p = ModelPrice::new(Decimal::new(25, 7), Decimal::new(15, 6))
    ///     .with_price(key("input_cost_per_token_priority"), Decimal::new(5, 6))
    ///     .with_price(key("input_cost_per_token_above_272k_tokens"), Decimal::new(5, 6));
    /// assert_eq!(p.rate(Rate::Input, None, 300_000), Decimal::new(5, 6));
    /// assert_eq!(p.rate(Rate::Input, Some(PricingTier::Flex), 1_000), Decimal::new(25, 7));
    /// assert_eq!(p.rate(Rate::CacheRead, Some(PricingTier::Priority), 1_000), Decimal::new(5, 6));
    /// ```
    pub fn rate(&self, rate: Rate, tier: Option<PricingTier>, prompt_tokens: u64) -> Decimal {
        if rate == Rate::Reasoning {
            if let Some(t) = tier {
                if let Some(p) = self.listed(rate, Some(t), prompt_tokens, true) {
                    return p;
                }
                if self
                    .listed(Rate::Output, Some(t), prompt_tokens, true)
                    .is_some()
                {
                    return self.rate(Rate::Output, tier, prompt_tokens);
                }
            }
        }
        match (
            self.listed(rate, tier, prompt_tokens, false),
            rate.fallback(),
        ) {
            (Some(p), _) => p,
            (None, Some(parent)) => self.rate(parent, tier, prompt_tokens),
            // Input and output are always listed.
            (None, None) => match rate {
                Rate::Output => self.output,
                _ => self.input,
            },
        }
    }

    /// The listed price of `rate` (no fallback to another rate); `tier_only` looks at the
    /// tier's own prices only.
    fn listed(
        &self,
        rate: Rate,
        tier: Option<PricingTier>,
        prompt_tokens: u64,
        tier_only: bool,
    ) -> Option<Decimal> {
        let get = |above, tier| self.price(RateKey { rate, above, tier });
        let threshold = self.threshold(rate, prompt_tokens);
        if tier_only {
            return tier.and_then(|t| {
                threshold
                    .and_then(|n| get(Some(n), Some(t)))
                    .or_else(|| get(None, Some(t)))
            });
        }
        // LiteLLM: a tier's long-context price, else the standard long-context price, else the
        // tier's price, else the standard price.
        threshold
            .and_then(|n| {
                tier.and_then(|t| get(Some(n), Some(t)))
                    .or_else(|| get(Some(n), None))
            })
            .or_else(|| tier.and_then(|t| get(None, Some(t))))
            .or_else(|| get(None, None))
    }

    /// The highest long-context threshold of `rate` (any tier) that `prompt_tokens` exceeds.
    fn threshold(&self, rate: Rate, prompt_tokens: u64) -> Option<u64> {
        if !self.long_context {
            return None;
        }
        let from = RateKey {
            rate,
            above: Some(0),
            tier: None,
        };
        let to = RateKey {
            rate,
            above: Some(prompt_tokens),
            tier: None,
        };
        // Keys sort by (rate, above, tier): the range holds this rate's thresholds below the
        // prompt length (a key `above == prompt_tokens` with a tier is past `to`; without a tier
        // it is `to` itself, excluded: the prompt must exceed the threshold).
        self.rates
            .range((Bound::Included(from), Bound::Excluded(to)))
            .filter_map(|(k, _)| k.above)
            .filter(|&n| prompt_tokens > n)
            .max()
    }

    /// The exact cost of `usage` in USD: the sum of [`cost_breakdown`](Self::cost_breakdown)'s
    /// parts. `None` only when the result cannot be represented exactly (far beyond realistic
    /// token counts).
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::pricing::{ModelPrice, Rate, RateKey, TokenUsage};
    ///
    /// let p = ModelPrice::new(Decimal::new(2, 6), Decimal::new(8, 6))
    ///     .with_price(RateKey::base(Rate::CacheRead), Decimal::new(5, 7));
    /// let usage = TokenUsage { input: 10, cache_read: 4, output: 1, ..TokenUsage::default() };
    /// // 6·0.000002 + 4·0.0000005 + 1·0.000008
    /// assert_eq!(p.cost(&usage), Some(Decimal::new(22, 6)));
    /// ```
    pub fn cost(&self, usage: &TokenUsage) -> Option<Decimal> {
        self.cost_breakdown(usage).map(|b| b.total)
    }
}
