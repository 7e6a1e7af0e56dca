//! Every billable dimension priced from the embedded table (LiteLLM 1.110.2), each expected
//! figure worked out by hand from the prices quoted beside it; and the invariant that the parts
//! of a cost add up to it exactly, for random usages and prices.

use proptest::prelude::*;
use rust_decimal::Decimal;
use tower_activity::pricing::{
    CostBreakdown, ModelPrice, PriceTable, PricingTier, Rate, RateKey, SearchContextSize,
    SearchPrice, TokenUsage,
};

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn breakdown(model: &str, usage: TokenUsage) -> CostBreakdown {
    PriceTable::embedded()
        .cost_breakdown(model, &usage)
        .unwrap_or_else(|| panic!("{model} has no price"))
}

/// The breakdown's parts are exactly `want`, and its total is `total`.
fn assert_parts(b: &CostBreakdown, want: &[(&str, &str)], total: &str) {
    let got: Vec<(&str, String)> = b.parts.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let mut want: Vec<(&str, String)> = want.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(b.total, dec(total));
    assert_eq!(b.total, b.parts.values().sum::<Decimal>());
}

#[test]
fn priority_and_flex_tiers() {
    // gpt-5-2025-08-07 priority: input 2.5e-06, cache_read 2.5e-07, output 2e-05; no reasoning
    // price of its own, so reasoning is the tier's output price.
    let usage = TokenUsage {
        input: 1200,
        cache_read: 200,
        output: 800,
        reasoning: 512,
        tier: Some(PricingTier::Priority),
        ..TokenUsage::default()
    };
    let b = breakdown("gpt-5-2025-08-07", usage);
    assert_parts(
        &b,
        &[
            ("input", "0.0025"),       // 1000 · 0.0000025
            ("cache_read", "0.00005"), // 200 · 0.00000025
            ("output", "0.00576"),     // 288 · 0.00002
            ("reasoning", "0.01024"),  // 512 · 0.00002
        ],
        "0.01855",
    );
    // Standard: 1000·0.00000125 + 200·0.000000125 + 800·0.00001 = 0.009275, half.
    let standard = breakdown(
        "gpt-5-2025-08-07",
        TokenUsage {
            tier: None,
            ..usage
        },
    );
    assert_eq!(standard.total, dec("0.009275"));
    // gpt-5 flex: input 6.25e-07, cache_read 6.25e-08, output 5e-06.
    let flex = breakdown(
        "gpt-5",
        TokenUsage {
            tier: Some(PricingTier::Flex),
            ..usage
        },
    );
    assert_parts(
        &flex,
        &[
            ("input", "0.000625"),
            ("cache_read", "0.0000125"),
            ("output", "0.00144"),
            ("reasoning", "0.00256"),
        ],
        "0.0046375",
    );
}

#[test]
fn a_tier_without_prices_of_its_own_is_priced_at_the_standard_rates() {
    // claude-sonnet-4-5 lists no *_priority price: Anthropic's priority tier costs the same.
    let usage = TokenUsage {
        input: 1000,
        output: 100,
        ..TokenUsage::default()
    };
    let standard = breakdown("claude-sonnet-4-5", usage);
    let priority = breakdown(
        "claude-sonnet-4-5",
        TokenUsage {
            tier: Some(PricingTier::Priority),
            ..usage
        },
    );
    assert_eq!(standard, priority);
    assert_eq!(standard.total, dec("0.0045")); // 1000·0.000003 + 100·0.000015
}

#[test]
fn cache_writes_by_lifetime() {
    // claude-sonnet-4-5-20250929: input 3e-06, cache_read 3e-07, cache_creation 3.75e-06,
    // cache_creation_above_1hr 6e-06, output 1.5e-05.
    let usage = TokenUsage {
        input: 3 + 1000 + 2000,
        cache_read: 1000,
        cache_write: 2000,
        cache_write_1h: 1500,
        output: 100,
        ..TokenUsage::default()
    };
    let b = breakdown("claude-sonnet-4-5-20250929", usage);
    assert_parts(
        &b,
        &[
            ("input", "0.000009"),          // 3 · 0.000003
            ("cache_read", "0.0003"),       // 1000 · 0.0000003
            ("cache_write_5m", "0.001875"), // 500 · 0.00000375
            ("cache_write_1h", "0.009"),    // 1500 · 0.000006
            ("output", "0.0015"),           // 100 · 0.000015
        ],
        "0.012684",
    );
    // A model without a 1-hour price prices those writes as 5-minute ones (claude-3-opus-latest
    // lists cache_creation 1.875e-05 only).
    let (_, opus) = PriceTable::embedded()
        .lookup("claude-3-opus-latest")
        .unwrap();
    assert_eq!(opus.price(RateKey::base(Rate::CacheWrite1h)), None);
    assert_eq!(
        opus.rate(Rate::CacheWrite1h, None, 10),
        opus.rate(Rate::CacheWrite, None, 10)
    );
}

#[test]
fn web_searches_by_context_size() {
    // claude-sonnet-4-5: $0.01 per search at every size; 1500·0.000003 + 100·0.000015 = 0.006
    // of tokens, 3 searches 0.03: the $0.036 request.
    let usage = TokenUsage {
        input: 1500,
        output: 100,
        web_searches: 3,
        ..TokenUsage::default()
    };
    let b = breakdown("claude-sonnet-4-5", usage);
    assert_parts(
        &b,
        &[
            ("input", "0.0045"),
            ("output", "0.0015"),
            ("web_search", "0.03"),
        ],
        "0.036",
    );
    // The size picks the price; a size the table lacks is priced at medium.
    let mut p = ModelPrice::new(dec("0"), dec("0"));
    p.web_search = Some(SearchPrice {
        low: Some(dec("0.03")),
        medium: Some(dec("0.035")),
        high: None,
    });
    let cost = |size| {
        p.cost(&TokenUsage {
            web_searches: 2,
            search_context: size,
            ..TokenUsage::default()
        })
    };
    assert_eq!(cost(SearchContextSize::Low), Some(dec("0.06")));
    assert_eq!(cost(SearchContextSize::Medium), Some(dec("0.07")));
    assert_eq!(cost(SearchContextSize::High), Some(dec("0.07")));
    // No search price: the tokens are priced, the searches are named as unpriced.
    let b = breakdown(
        "gpt-4o",
        TokenUsage {
            web_searches: 1,
            ..TokenUsage::default()
        },
    );
    assert_eq!(
        (b.total, b.unpriced.as_slice()),
        (Decimal::ZERO, &["web_search"][..])
    );
}

#[test]
fn audio_and_image_tokens() {
    // gpt-4o-audio-preview-2025-06-03: input 2.5e-06, audio in 4e-05, output 1e-05, audio out
    // 8e-05.
    let usage = TokenUsage {
        input: 100,
        input_audio: 60,
        output: 200,
        output_audio: 150,
        ..TokenUsage::default()
    };
    let b = breakdown("gpt-4o-audio-preview-2025-06-03", usage);
    assert_parts(
        &b,
        &[
            ("input", "0.0001"),       // 40 · 0.0000025
            ("input_audio", "0.0024"), // 60 · 0.00004
            ("output", "0.0005"),      // 50 · 0.00001
            ("output_audio", "0.012"), // 150 · 0.00008
        ],
        "0.015",
    );
    // Priced at text rates it was 100·0.0000025 + 200·0.00001 = 0.00225: 85 % under.
    let as_text = TokenUsage {
        input_audio: 0,
        output_audio: 0,
        ..usage
    };
    assert_eq!(
        breakdown("gpt-4o-audio-preview-2025-06-03", as_text).total,
        dec("0.00225")
    );
    // A model without an image price prices image tokens as text (gpt-4o).
    let b = breakdown(
        "gpt-4o",
        TokenUsage {
            input: 10,
            input_image: 4,
            ..TokenUsage::default()
        },
    );
    assert_parts(
        &b,
        &[("input", "0.000015"), ("input_image", "0.00001")],
        "0.000025",
    );
}

#[test]
fn gemini_modalities_cached_and_not() {
    // gemini/gemini-2.5-flash: input 3e-07, audio 1e-06, cache_read 3e-08, cached audio 1e-07,
    // output and reasoning 2.5e-06; video has no price of its own (input).
    // The fixture gemini.json: prompt 17713 (TEXT 16, VIDEO 15780, AUDIO 1917), cached 17379
    // (AUDIO 1881, TEXT 15, VIDEO 15483), candidates 68, thoughts 821.
    let usage = TokenUsage {
        input: 17713,
        cache_read: 17379,
        input_audio: 1917,
        input_video: 15780,
        cache_read_audio: 1881,
        cache_read_video: 15483,
        output: 68 + 821,
        reasoning: 821,
        ..TokenUsage::default()
    };
    let b = breakdown("gemini-2.5-flash", usage);
    assert_parts(
        &b,
        &[
            ("input", "0.0000003"),            // 1 · 0.0000003
            ("input_audio", "0.000036"),       // 36 · 0.000001
            ("input_video", "0.0000891"),      // 297 · 0.0000003
            ("cache_read", "0.00046494"),      // 15498 · 0.00000003
            ("cache_read_audio", "0.0001881"), // 1881 · 0.0000001
            ("output", "0.00017"),             // 68 · 0.0000025
            ("reasoning", "0.0020525"),        // 821 · 0.0000025
        ],
        "0.00300094",
    );
    // Uncached audio input alone: 800·0.000001 + 200·0.0000003 + 150·0.0000025.
    let b = breakdown(
        "gemini-2.5-flash",
        TokenUsage {
            input: 1000,
            input_audio: 800,
            output: 150,
            reasoning: 100,
            ..TokenUsage::default()
        },
    );
    assert_eq!(b.total, dec("0.001235"));
}

#[test]
fn long_context_tiers() {
    // gpt-5.4 above 272k: input 5e-06, cache_read 5e-07, output 2.25e-05 (base: 2.5e-06,
    // 2.5e-07, 1.5e-05).
    let usage = TokenUsage {
        input: 300_000,
        cache_read: 100_000,
        output: 2_000,
        ..TokenUsage::default()
    };
    let b = breakdown("gpt-5.4", usage);
    assert_parts(
        &b,
        &[("input", "1"), ("cache_read", "0.05"), ("output", "0.045")],
        "1.095",
    );
    // At the base rates it was 0.5 + 0.025 + 0.03 = 0.555; exactly 272k is not above.
    let at = TokenUsage {
        input: 272_000,
        cache_read: 72_000,
        ..usage
    };
    assert_eq!(breakdown("gpt-5.4", at).total, dec("0.548")); // 0.5 + 0.018 + 0.03
    // Flex above 272k has prices of its own (2.5e-06, 2.5e-07, 1.125e-05); priority does not,
    // so the standard long-context prices apply (LiteLLM's fallback).
    let flex = breakdown(
        "gpt-5.4",
        TokenUsage {
            tier: Some(PricingTier::Flex),
            ..usage
        },
    );
    assert_eq!(flex.total, dec("0.5475")); // 0.5 + 0.025 + 0.0225
    let priority = breakdown(
        "gpt-5.4",
        TokenUsage {
            tier: Some(PricingTier::Priority),
            ..usage
        },
    );
    assert_eq!(priority.total, b.total);
    // gemini/gemini-2.5-pro priority above 200k: input 4.5e-06, cache_read 4.5e-07, output
    // 2.7e-05: 150000·0.0000045 + 100000·0.00000045 + 1000·0.000027.
    let pro = breakdown(
        "gemini-2.5-pro",
        TokenUsage {
            input: 250_000,
            cache_read: 100_000,
            output: 1_000,
            tier: Some(PricingTier::Priority),
            ..TokenUsage::default()
        },
    );
    assert_eq!(pro.total, dec("0.747"));
}

#[test]
fn the_highest_threshold_exceeded_applies() {
    let key = |k| RateKey::parse(k).unwrap();
    let p = ModelPrice::new(dec("1"), dec("1"))
        .with_price(key("input_cost_per_token_above_128k_tokens"), dec("2"))
        .with_price(key("input_cost_per_token_above_256k_tokens"), dec("3"))
        .with_price(
            key("input_cost_per_token_above_256k_tokens_priority"),
            dec("4"),
        );
    assert_eq!(p.rate(Rate::Input, None, 128_000), dec("1"));
    assert_eq!(p.rate(Rate::Input, None, 128_001), dec("2"));
    assert_eq!(p.rate(Rate::Input, None, 256_001), dec("3"));
    assert_eq!(
        p.rate(Rate::Input, Some(PricingTier::Priority), 256_001),
        dec("4")
    );
    assert_eq!(
        p.rate(Rate::Input, Some(PricingTier::Priority), 200_000),
        dec("2")
    );
    // Output has no threshold of its own: it keeps its price.
    assert_eq!(p.rate(Rate::Output, None, 300_000), dec("1"));
}

#[test]
fn reasoning_under_a_tier_follows_the_tiers_output() {
    // gemini/gemini-2.5-flash: reasoning 2.5e-06 (standard only), output priority 4.5e-06.
    let (_, p) = PriceTable::embedded().lookup("gemini-2.5-flash").unwrap();
    assert_eq!(p.rate(Rate::Reasoning, None, 10), dec("0.0000025"));
    assert_eq!(
        p.rate(Rate::Reasoning, Some(PricingTier::Priority), 10),
        dec("0.0000045")
    );
}

/// A price with a random subset of every rate, tier and threshold.
fn arb_price() -> impl Strategy<Value = ModelPrice> {
    let price = (0i64..5_000, 6u32..=12).prop_map(|(m, s)| Decimal::new(m, s));
    let keys = prop::collection::vec(
        (
            prop::sample::select(Rate::ALL.to_vec()),
            prop::option::of(prop::sample::select(vec![128_000u64, 200_000, 272_000])),
            prop::option::of(prop::sample::select(vec![
                PricingTier::Priority,
                PricingTier::Flex,
            ])),
            price.clone(),
        ),
        0..12,
    );
    let search = prop::option::of((price.clone(), price.clone(), price.clone()));
    (price.clone(), price, keys, search).prop_map(|(input, output, keys, search)| {
        let mut p = ModelPrice::new(input, output);
        for (rate, above, tier, value) in keys {
            p.set_price(RateKey { rate, above, tier }, value);
        }
        p.web_search = search.map(|(low, medium, high)| SearchPrice {
            low: Some(low),
            medium: Some(medium),
            high: Some(high),
        });
        p
    })
}

fn arb_usage() -> impl Strategy<Value = TokenUsage> {
    let n = || 0u64..400_000;
    (
        (n(), n(), n(), n(), n(), n()),
        (n(), n(), n(), n(), n(), n()),
        (n(), n(), n(), 0u64..5),
        prop::option::of(prop::sample::select(vec![
            PricingTier::Priority,
            PricingTier::Flex,
        ])),
    )
        .prop_map(|(a, b, c, tier)| TokenUsage {
            input: a.0,
            output: a.1,
            cache_read: a.2,
            cache_write: a.3,
            reasoning: a.4,
            cache_write_1h: a.5,
            input_audio: b.0,
            input_image: b.1,
            input_video: b.2,
            cache_read_audio: b.3,
            cache_read_image: b.4,
            cache_read_video: b.5,
            output_audio: c.0,
            output_image: c.1,
            tool_use_input: c.2,
            web_searches: c.3,
            search_context: SearchContextSize::Medium,
            tier,
        })
}

proptest! {
    #[test]
    fn the_parts_add_up_to_the_cost_exactly(p in arb_price(), u in arb_usage()) {
        let b = p.cost_breakdown(&u).expect("realistic counts are exact");
        prop_assert_eq!(b.total, b.parts.values().sum::<Decimal>());
        prop_assert_eq!(p.cost(&u), Some(b.total));
        prop_assert!(b.parts.values().all(|v| *v >= Decimal::ZERO));
    }

    #[test]
    fn every_token_is_priced_exactly_once(u in arb_usage(), m in 1i64..1_000) {
        // One price for every rate: the cost counts each token once.
        let one = Decimal::new(m, 7);
        let mut p = ModelPrice::new(one, one);
        for rate in Rate::ALL {
            p.set_price(RateKey::base(rate), one);
        }
        let u = TokenUsage { web_searches: 0, ..u };
        let prompt = u.cache_read
            + u.cache_write
            + u.input.saturating_sub(u.cache_read).saturating_sub(u.cache_write);
        let generated = u.reasoning + u.output.saturating_sub(u.reasoning);
        let tokens = prompt + generated + u.tool_use_input;
        prop_assert_eq!(p.cost(&u), Some(one * Decimal::from(tokens)));
    }
}
