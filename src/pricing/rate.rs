//! The names of LiteLLM's per-token prices: which rate ([`Rate`]), above which prompt length,
//! for which service tier ([`PricingTier`]) — one [`RateKey`] per LiteLLM key.

use std::fmt;

/// A per-token price a response can trigger, by its LiteLLM base key.
///
/// Each rate but [`Rate::Input`] and [`Rate::Output`] falls back to another when a model does
/// not list it ([`Rate::fallback`]): cache prices to the input price, audio and image prices to
/// the text price of their direction, the 1-hour cache write to the 5-minute one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rate {
    /// `input_cost_per_token`: an uncached text prompt token.
    Input,
    /// `output_cost_per_token`: a generated text token.
    Output,
    /// `cache_read_input_token_cost`: a prompt token read from a cache.
    CacheRead,
    /// `cache_creation_input_token_cost`: a prompt token written to a cache for the default
    /// lifetime (Anthropic: 5 minutes).
    CacheWrite,
    /// `cache_creation_input_token_cost_above_1hr`: a prompt token written to a cache for 1 hour.
    CacheWrite1h,
    /// `output_cost_per_reasoning_token`: a reasoning (thinking) token.
    Reasoning,
    /// `input_cost_per_audio_token`: an uncached audio prompt token.
    InputAudio,
    /// `output_cost_per_audio_token`: a generated audio token.
    OutputAudio,
    /// `cache_read_input_audio_token_cost`: an audio prompt token read from a cache.
    CacheReadAudio,
    /// `input_cost_per_image_token`: an uncached image prompt token.
    InputImage,
    /// `output_cost_per_image_token`: a generated image token.
    OutputImage,
    /// `cache_read_input_image_token_cost`: an image prompt token read from a cache.
    CacheReadImage,
    /// `input_cost_per_video_token`: an uncached video prompt token.
    InputVideo,
}

impl Rate {
    /// Every rate, the longest LiteLLM names first (so that parsing a key tries
    /// `cache_creation_input_token_cost_above_1hr` before `cache_creation_input_token_cost`).
    pub const ALL: [Rate; 13] = [
        Rate::CacheWrite1h,
        Rate::CacheReadAudio,
        Rate::CacheReadImage,
        Rate::CacheWrite,
        Rate::CacheRead,
        Rate::Reasoning,
        Rate::InputAudio,
        Rate::OutputAudio,
        Rate::InputImage,
        Rate::OutputImage,
        Rate::InputVideo,
        Rate::Input,
        Rate::Output,
    ];

    /// The LiteLLM key of the rate's standard price.
    ///
    /// ```
    /// use tower_activity::pricing::Rate;
    /// assert_eq!(Rate::CacheWrite1h.litellm_key(), "cache_creation_input_token_cost_above_1hr");
    /// ```
    pub fn litellm_key(self) -> &'static str {
        match self {
            Rate::Input => "input_cost_per_token",
            Rate::Output => "output_cost_per_token",
            Rate::CacheRead => "cache_read_input_token_cost",
            Rate::CacheWrite => "cache_creation_input_token_cost",
            Rate::CacheWrite1h => "cache_creation_input_token_cost_above_1hr",
            Rate::Reasoning => "output_cost_per_reasoning_token",
            Rate::InputAudio => "input_cost_per_audio_token",
            Rate::OutputAudio => "output_cost_per_audio_token",
            Rate::CacheReadAudio => "cache_read_input_audio_token_cost",
            Rate::InputImage => "input_cost_per_image_token",
            Rate::OutputImage => "output_cost_per_image_token",
            Rate::CacheReadImage => "cache_read_input_image_token_cost",
            Rate::InputVideo => "input_cost_per_video_token",
        }
    }

    /// The rate that prices this one when a model lists no price for it; `None` for input and
    /// output, which every priced model has.
    ///
    /// ```
    /// use tower_activity::pricing::Rate;
    /// assert_eq!(Rate::CacheReadAudio.fallback(), Some(Rate::CacheRead));
    /// assert_eq!(Rate::CacheRead.fallback(), Some(Rate::Input));
    /// assert_eq!(Rate::Output.fallback(), None);
    /// ```
    pub fn fallback(self) -> Option<Rate> {
        match self {
            Rate::Input | Rate::Output => None,
            Rate::CacheRead | Rate::CacheWrite | Rate::InputAudio | Rate::InputImage => {
                Some(Rate::Input)
            }
            Rate::InputVideo => Some(Rate::Input),
            Rate::CacheWrite1h => Some(Rate::CacheWrite),
            Rate::CacheReadAudio | Rate::CacheReadImage => Some(Rate::CacheRead),
            Rate::Reasoning | Rate::OutputAudio | Rate::OutputImage => Some(Rate::Output),
        }
    }
}

/// A service tier with prices of its own in LiteLLM's table (`*_priority`, `*_flex`). Every
/// other tier a provider names (`default`, `standard`, `auto`, `scale` …) is priced at the
/// standard rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PricingTier {
    /// Faster processing at a higher price (OpenAI, Gemini).
    Priority,
    /// Slower processing at a lower price (OpenAI, Gemini).
    Flex,
}

impl PricingTier {
    /// The priced tier of a provider's `service_tier` (any case); `None` for tiers priced at
    /// the standard rates. `fast` is Priority's other name (as in LiteLLM).
    ///
    /// ```
    /// use tower_activity::pricing::PricingTier;
    /// assert_eq!(PricingTier::from_service_tier("priority"), Some(PricingTier::Priority));
    /// assert_eq!(PricingTier::from_service_tier("FLEX"), Some(PricingTier::Flex));
    /// assert_eq!(PricingTier::from_service_tier("default"), None);
    /// ```
    pub fn from_service_tier(tier: &str) -> Option<PricingTier> {
        let tier = tier.trim();
        if tier.eq_ignore_ascii_case("priority") || tier.eq_ignore_ascii_case("fast") {
            Some(PricingTier::Priority)
        } else if tier.eq_ignore_ascii_case("flex") {
            Some(PricingTier::Flex)
        } else {
            None
        }
    }

    /// The suffix of its LiteLLM keys, without the underscore.
    pub fn suffix(self) -> &'static str {
        match self {
            PricingTier::Priority => "priority",
            PricingTier::Flex => "flex",
        }
    }
}

/// One LiteLLM per-token price key: `{rate}[_above_{N}k_tokens][_{tier}]`, e.g.
/// `input_cost_per_token_above_272k_tokens_priority`.
///
/// ```
/// use tower_activity::pricing::{PricingTier, Rate, RateKey};
///
/// let key = RateKey::parse("input_cost_per_token_above_272k_tokens_priority").unwrap();
/// assert_eq!(key, RateKey { rate: Rate::Input, above: Some(272_000), tier: Some(PricingTier::Priority) });
/// assert_eq!(key.to_string(), "input_cost_per_token_above_272k_tokens_priority");
/// assert_eq!(RateKey::parse("input_cost_per_token_batches"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RateKey {
    /// The rate.
    pub rate: Rate,
    /// The price holds for prompts longer than this many tokens (long-context tiers).
    pub above: Option<u64>,
    /// The price holds for this service tier.
    pub tier: Option<PricingTier>,
}

impl RateKey {
    /// The standard price of `rate`.
    pub const fn base(rate: Rate) -> RateKey {
        RateKey {
            rate,
            above: None,
            tier: None,
        }
    }

    /// The key a LiteLLM field name stands for; `None` for fields this crate does not read
    /// (batch, per-second, per-character prices …).
    pub fn parse(key: &str) -> Option<RateKey> {
        Rate::ALL.iter().find_map(|&rate| {
            let rest = key.strip_prefix(rate.litellm_key())?;
            let (above, rest) = match rest.strip_prefix("_above_") {
                Some(r) => {
                    let (n, rest) = r.split_once("_tokens")?;
                    (Some(threshold(n)?), rest)
                }
                None => (None, rest),
            };
            let tier = match rest {
                "" => None,
                "_priority" => Some(PricingTier::Priority),
                "_flex" => Some(PricingTier::Flex),
                _ => return None,
            };
            Some(RateKey { rate, above, tier })
        })
    }
}

/// `272k` → 272 000, `128` → 128.
fn threshold(text: &str) -> Option<u64> {
    let (digits, factor) = match text.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1000),
        None => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

impl fmt::Display for RateKey {
    /// The LiteLLM field name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rate.litellm_key())?;
        if let Some(n) = self.above {
            if n % 1000 == 0 {
                write!(f, "_above_{}k_tokens", n / 1000)?;
            } else {
                write!(f, "_above_{n}_tokens")?;
            }
        }
        if let Some(t) = self.tier {
            write!(f, "_{}", t.suffix())?;
        }
        Ok(())
    }
}

/// How much of the web a search may read, as the request's tool sets it (OpenAI's
/// `search_context_size`); LiteLLM prices searches per size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SearchContextSize {
    /// `low`.
    Low,
    /// `medium`, the default when the request does not say.
    #[default]
    Medium,
    /// `high`.
    High,
}

impl SearchContextSize {
    /// The size a request names (`low`, `medium`, `high`, any case); `None` for anything else.
    pub fn parse(size: &str) -> Option<SearchContextSize> {
        match size.trim().to_ascii_lowercase().as_str() {
            "low" => Some(SearchContextSize::Low),
            "medium" => Some(SearchContextSize::Medium),
            "high" => Some(SearchContextSize::High),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shape_round_trips() {
        for key in [
            "input_cost_per_token",
            "output_cost_per_token_flex",
            "cache_read_input_token_cost_above_200k_tokens_priority",
            "cache_creation_input_token_cost_above_1hr",
            "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
            "cache_creation_input_token_cost_above_272k_tokens_flex",
            "input_cost_per_audio_token_above_200k_tokens_priority",
            "cache_read_input_audio_token_cost_priority",
            "output_cost_per_token_above_128_tokens",
            "input_cost_per_video_token",
        ] {
            let parsed = RateKey::parse(key).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(parsed.to_string(), key);
        }
        let k = RateKey::parse("cache_creation_input_token_cost_above_1hr_above_200k_tokens");
        assert_eq!(
            k,
            Some(RateKey {
                rate: Rate::CacheWrite1h,
                above: Some(200_000),
                tier: None
            })
        );
    }

    #[test]
    fn keys_the_crate_cannot_trigger_are_not_read() {
        for key in [
            "input_cost_per_token_batches",
            "input_cost_per_token_above_272k_tokens_batches",
            "cache_creation_input_token_cost_above_12hr",
            "cache_creation_input_token_cost_above_12hr_priority",
            "input_cost_per_token_ultrafast",
            "input_cost_per_token_cache_hit",
            "input_cost_per_token_above__tokens",
            "input_cost_per_token_above_k_tokens",
            "input_cost_per_second",
            "output_cost_per_image",
            "input_cost_per_audio_per_second",
        ] {
            assert_eq!(RateKey::parse(key), None, "{key}");
        }
    }
}
