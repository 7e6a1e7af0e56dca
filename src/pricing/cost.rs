//! The exact cost of a [`TokenUsage`], part by part.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::exact::{exact_add, exact_mul, normalized};
use super::{ModelPrice, Rate, TokenUsage};

/// The cost of one request: its priced parts, which add up exactly to `total`.
///
/// Part names (each present only when its count is above 0): `input`, `input_audio`,
/// `input_image`, `input_video` (uncached prompt tokens), `cache_read`, `cache_read_audio`,
/// `cache_read_image`, `cache_write_5m`, `cache_write_1h`, `output` (visible text),
/// `reasoning`, `output_audio`, `output_image`, `tool_use_input`, `web_search`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostBreakdown {
    /// The sum of the parts, in USD.
    pub total: Decimal,
    /// USD per priced part.
    pub parts: BTreeMap<&'static str, Decimal>,
    /// Parts the usage has but the model has no price for (`web_search` on a model without a
    /// search price): left out of `total`, named so that the record can say so.
    pub unpriced: Vec<&'static str>,
}

impl ModelPrice {
    /// The cost of `usage`, part by part:
    ///
    /// - the prompt's uncached tokens (`input − cache_read − cache_write`) are split into
    ///   audio, image and video tokens (each modality's count less its cached part, in that
    ///   order, each cut to what is left) and text, the rest;
    /// - cache reads into audio, image and the rest (text and video, priced as cached text);
    /// - cache writes into 1-hour writes and the rest (5 minutes);
    /// - the output into reasoning, then audio and image tokens cut to what is left of
    ///   `output − reasoning`, and visible text, the rest;
    /// - tool-use prompt tokens at the input price, web searches at the price of one search of
    ///   the request's context size.
    ///
    /// Each part is priced at [`ModelPrice::rate`] for the usage's tier and prompt length
    /// (`input`). `None` only when a product or the sum cannot be represented exactly.
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::pricing::{ModelPrice, Rate, RateKey, TokenUsage};
    ///
    /// let p = ModelPrice::new(Decimal::new(25, 7), Decimal::new(1, 5))
    ///     .with_price(RateKey::base(Rate::InputAudio), Decimal::new(4, 5));
    /// let usage = TokenUsage { input: 100, input_audio: 60, output: 10, ..TokenUsage::default() };
    /// let b = p.cost_breakdown(&usage).unwrap();
    /// assert_eq!(b.parts["input"], Decimal::new(1, 4)); // 40 · 0.0000025
    /// assert_eq!(b.parts["input_audio"], Decimal::new(24, 4)); // 60 · 0.00004
    /// assert_eq!(b.total, b.parts.values().sum());
    /// ```
    pub fn cost_breakdown(&self, usage: &TokenUsage) -> Option<CostBreakdown> {
        let mut parts = BTreeMap::new();
        let priced = self.priced_parts(usage, |name, amount| {
            parts.insert(name, amount);
        })?;
        Some(CostBreakdown {
            total: priced.total,
            parts,
            unpriced: priced.unpriced.into_iter().collect(),
        })
    }

    /// [`cost_breakdown`](Self::cost_breakdown) without its map: each priced part (its name
    /// and its amount, normalised) is handed to `part` in the order of the names, and the
    /// exact sum returned; what the layer prices every record with (straight into its
    /// `cost_details`, with no map or array in between). `None` when a product or the sum
    /// cannot be represented exactly (the parts handed over until then are to be dropped).
    pub(crate) fn priced_parts(
        &self,
        usage: &TokenUsage,
        mut part: impl FnMut(&'static str, Decimal),
    ) -> Option<Priced> {
        let u = usage;
        let uncached = u
            .input
            .saturating_sub(u.cache_read)
            .saturating_sub(u.cache_write);
        let mut left = uncached;
        let mut take = |n: u64| {
            let t = n.min(left);
            left -= t;
            t
        };
        let in_audio = take(u.input_audio.saturating_sub(u.cache_read_audio));
        let in_image = take(u.input_image.saturating_sub(u.cache_read_image));
        let in_video = take(u.input_video.saturating_sub(u.cache_read_video));
        let in_text = left;

        let cr_audio = u.cache_read_audio.min(u.cache_read);
        let cr_image = u.cache_read_image.min(u.cache_read - cr_audio);
        let cr_text = u.cache_read - cr_audio - cr_image;

        let w_1h = u.cache_write_1h.min(u.cache_write);
        let w_5m = u.cache_write - w_1h;

        let mut left = u.output.saturating_sub(u.reasoning);
        let mut take = |n: u64| {
            let t = n.min(left);
            left -= t;
            t
        };
        let out_audio = take(u.output_audio);
        let out_image = take(u.output_image);
        let out_text = left;

        // The parts are non-negative, so the exact sum does not depend on their order: they
        // are priced in the order of their names, which is the order `cost_details` keeps.
        let mut total = Decimal::ZERO;
        let mut add = |name: &'static str, amount: Decimal| -> Option<()> {
            total = exact_add(total, amount)?;
            part(name, normalized(amount));
            Some(())
        };
        let mut priced = |name: &'static str, tokens: u64, rate: Rate| -> Option<()> {
            if tokens == 0 {
                return Some(());
            }
            add(name, exact_mul(tokens, self.rate(rate, u.tier, u.input))?)
        };
        priced("cache_read", cr_text, Rate::CacheRead)?;
        priced("cache_read_audio", cr_audio, Rate::CacheReadAudio)?;
        priced("cache_read_image", cr_image, Rate::CacheReadImage)?;
        priced("cache_write_1h", w_1h, Rate::CacheWrite1h)?;
        priced("cache_write_5m", w_5m, Rate::CacheWrite)?;
        priced("input", in_text, Rate::Input)?;
        priced("input_audio", in_audio, Rate::InputAudio)?;
        priced("input_image", in_image, Rate::InputImage)?;
        priced("input_video", in_video, Rate::InputVideo)?;
        priced("output", out_text, Rate::Output)?;
        priced("output_audio", out_audio, Rate::OutputAudio)?;
        priced("output_image", out_image, Rate::OutputImage)?;
        priced("reasoning", u.reasoning, Rate::Reasoning)?;
        priced("tool_use_input", u.tool_use_input, Rate::Input)?;
        let mut unpriced = None;
        if u.web_searches > 0 {
            match self
                .web_search
                .as_ref()
                .and_then(|s| s.per_search(u.search_context))
            {
                Some(price) => add("web_search", exact_mul(u.web_searches, price)?)?,
                None => unpriced = Some("web_search"),
            }
        }
        Some(Priced {
            total: normalized(total),
            unpriced,
        })
    }
}

/// The exact sum of the priced parts of a cost (see [`ModelPrice::priced_parts`]).
#[derive(Debug)]
pub(crate) struct Priced {
    /// The sum of the parts, in USD.
    pub(crate) total: Decimal,
    /// The one part that can go unpriced (`web_search`, without a search price).
    pub(crate) unpriced: Option<&'static str>,
}
