//! Costs and lookups against the embedded table (`data/prices.json`). Expected values are worked
//! out by hand from the prices in that file, quoted in each test.

use rust_decimal::Decimal;
use tower_activity::pricing::{ModelPrice, PriceTable, Rate, RateKey, TokenUsage};

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn cost(model: &str, usage: TokenUsage) -> Decimal {
    PriceTable::embedded()
        .cost(model, &usage)
        .unwrap_or_else(|| panic!("{model} has no price"))
}

fn key(model: &str) -> Option<&'static str> {
    PriceTable::embedded().lookup(model).map(|(k, _)| k)
}

#[test]
fn embedded_prices_are_the_literal_decimals() {
    let (_, p) = PriceTable::embedded().lookup("gpt-4o").unwrap();
    assert_eq!(p.input, dec("0.0000025")); // "input_cost_per_token": 2.5e-06
    assert_eq!(p.output, dec("0.00001")); // 1e-05
    assert_eq!(
        p.price(RateKey::base(Rate::CacheRead)),
        Some(dec("0.00000125"))
    ); // 1.25e-06
    assert_eq!(p.input.to_string(), "0.0000025");
}

#[test]
fn gpt_4o_with_cached_tokens() {
    // gpt-4o-2024-08-06: input 2.5e-06, cache_read 1.25e-06, output 1e-05.
    // (1234 − 1024)·0.0000025 = 0.000525; 1024·0.00000125 = 0.00128; 56·0.00001 = 0.00056
    let usage = TokenUsage {
        input: 1234,
        cache_read: 1024,
        output: 56,
        ..TokenUsage::default()
    };
    assert_eq!(cost("gpt-4o-2024-08-06", usage), dec("0.002365"));
}

#[test]
fn claude_sonnet_4_5_with_cache_read_and_write() {
    // claude-sonnet-4-5-20250929: input 3e-06, cache_read 3e-07, cache_write 3.75e-06, output 1.5e-05.
    // input = 3 uncached + 2000 read + 1500 written = 3503.
    // 3·0.000003 = 0.000009; 2000·0.0000003 = 0.0006; 1500·0.00000375 = 0.005625;
    // 77·0.000015 = 0.001155; total 0.007389
    let usage = TokenUsage {
        input: 3503,
        cache_read: 2000,
        cache_write: 1500,
        output: 77,
        ..TokenUsage::default()
    };
    assert_eq!(cost("claude-sonnet-4-5-20250929", usage), dec("0.007389"));
}

#[test]
fn gemini_2_5_pro_above_200k_uses_the_tier() {
    // gemini/gemini-2.5-pro above 200k: input 2.5e-06, cache_read 2.5e-07, output 1.5e-05
    // (no reasoning price: reasoning is priced as output).
    // 150000·0.0000025 = 0.375; 100000·0.00000025 = 0.025; 400·0.000015 = 0.006;
    // 600·0.000015 = 0.009; total 0.415
    let usage = TokenUsage {
        input: 250_000,
        cache_read: 100_000,
        output: 1000,
        reasoning: 600,
        ..TokenUsage::default()
    };
    assert_eq!(cost("gemini-2.5-pro", usage), dec("0.415"));
    // Exactly 200k is not above: base 1.25e-06 / 1e-05 → 0.25 + 0.01.
    let usage = TokenUsage {
        input: 200_000,
        output: 1000,
        ..TokenUsage::default()
    };
    assert_eq!(cost("gemini-2.5-pro", usage), dec("0.26"));
}

#[test]
fn o3_mini_reasoning_is_priced_as_output() {
    // o3-mini-2025-01-31: input 1.1e-06, output 4.4e-06, no reasoning price.
    // 500·0.0000011 = 0.00055; (300 + 1200)·0.0000044 = 0.0066; total 0.00715
    let usage = TokenUsage {
        input: 500,
        output: 1500,
        reasoning: 1200,
        ..TokenUsage::default()
    };
    assert_eq!(cost("o3-mini-2025-01-31", usage), dec("0.00715"));
}

#[test]
fn every_price_in_the_formula_is_used() {
    let mut table = PriceTable::empty();
    let key = |k| RateKey::parse(k).unwrap();
    let p = ModelPrice::new(dec("1"), dec("10"))
        .with_price(key("cache_read_input_token_cost"), dec("0.1"))
        .with_price(key("cache_creation_input_token_cost"), dec("2"))
        .with_price(key("output_cost_per_reasoning_token"), dec("100"))
        .with_price(key("input_cost_per_token_above_200k_tokens"), dec("1000"));
    table.insert("m", p);
    // 4·1 + 2·0.1 + 3·2 + 5·10 + 7·100 = 760.2
    let usage = TokenUsage {
        input: 9,
        cache_read: 2,
        cache_write: 3,
        output: 12,
        reasoning: 7,
        ..TokenUsage::default()
    };
    assert_eq!(table.cost("m", &usage), Some(dec("760.2")));
    // Above 200k only the tiered input price changes; the missing cache tiers keep their base.
    let usage = TokenUsage {
        input: 200_001,
        cache_read: 1,
        ..TokenUsage::default()
    };
    assert_eq!(table.cost("m", &usage), Some(dec("200000000.1")));
}

#[test]
fn missing_cache_prices_fall_back_to_input_and_parts_never_go_negative() {
    let mut table = PriceTable::empty();
    table.insert("m", ModelPrice::new(dec("0.5"), dec("3")));
    // Parts larger than the totals (seen in real streams): uncached input and visible output
    // are 0, the parts are still priced: 10·0.5 + 4·3.
    let usage = TokenUsage {
        input: 4,
        cache_read: 6,
        cache_write: 4,
        output: 1,
        reasoning: 4,
        ..TokenUsage::default()
    };
    assert_eq!(table.cost("m", &usage), Some(dec("17")));
}

#[test]
fn one_token_on_the_cheapest_model_is_not_rounded_away() {
    let table = PriceTable::embedded();
    let (model, cheapest) = table
        .iter()
        .filter(|(_, p)| p.input > Decimal::ZERO)
        .min_by_key(|(_, p)| p.input)
        .unwrap();
    let one = TokenUsage {
        input: 1,
        ..TokenUsage::default()
    };
    let c = table.cost(model, &one).unwrap();
    assert!(c > Decimal::ZERO, "{model}");
    assert_eq!(c, cheapest.input);
    // gpt-5-nano-2025-08-07: one cached token at 5e-09.
    let one_cached = TokenUsage {
        input: 1,
        cache_read: 1,
        ..TokenUsage::default()
    };
    assert_eq!(
        cost("gpt-5-nano-2025-08-07", one_cached),
        dec("0.000000005")
    );
}

#[test]
fn a_billion_tokens_costs_exactly() {
    // gpt-4o: 10^9·0.0000025 + 10^9·0.00001
    let usage = TokenUsage {
        input: 1_000_000_000,
        output: 1_000_000_000,
        ..TokenUsage::default()
    };
    assert_eq!(cost("gpt-4o", usage), dec("12500"));
}

#[test]
fn lookup_chain() {
    // 1. exact
    assert_eq!(
        key("claude-sonnet-4-5-20250929"),
        Some("claude-sonnet-4-5-20250929")
    );
    assert_eq!(key("gpt-4o-2024-08-06"), Some("gpt-4o-2024-08-06"));
    assert_eq!(key("GPT-4o"), Some("gpt-4o"));
    // 1. exact after dropping a routing prefix
    assert_eq!(key("openai/gpt-4o"), Some("gpt-4o"));
    assert_eq!(key("openai/gpt-4o-2024-05-13"), Some("gpt-4o-2024-05-13"));
    // 1. exact after dropping the prefix and writing version dots as dashes (OpenRouter names)
    assert_eq!(
        key("anthropic/claude-sonnet-4.5"),
        Some("claude-sonnet-4-5")
    );
    assert_eq!(
        key("openrouter/anthropic/claude-sonnet-4.5"),
        Some("claude-sonnet-4-5")
    );
    // 2. behind a provider prefix
    assert_eq!(key("gemini-2.5-flash"), Some("gemini/gemini-2.5-flash"));
    assert_eq!(
        key("magistral-medium-latest"),
        Some("mistral/magistral-medium-latest")
    );
    assert_eq!(key("models/gemini-2.5-pro"), Some("gemini/gemini-2.5-pro"));
    assert_eq!(key("openai/gpt-oss-120b"), Some("groq/openai/gpt-oss-120b"));
    assert_eq!(
        key("claude-3-5-sonnet@20240620"),
        Some("vertex_ai/claude-3-5-sonnet@20240620")
    );
    // 3. without a date suffix
    assert_eq!(key("gpt-4o-2099-12-31"), Some("gpt-4o"));
    assert_eq!(key("claude-sonnet-4-5-20991231"), Some("claude-sonnet-4-5"));
    assert_eq!(key("openai/gpt-4o-2099-12-31"), Some("gpt-4o"));
    // unknown
    assert_eq!(key("no-such-model-2024-08-06"), None);
    assert_eq!(key("minimax/minimax-m2:free"), None);
    assert_eq!(key(""), None);
}

#[test]
fn fixture_models_have_prices() {
    // The models named by ../shared/fixtures/*.source.txt (copied here: tests never read it).
    let expected = [
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano-2025-04-14"),
        ("o3-mini-2025-01-31", "o3-mini-2025-01-31"),
        ("gpt-5-2025-08-07", "gpt-5-2025-08-07"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano-2025-08-07"),
        ("gpt-5.3-codex", "gpt-5.3-codex"),
        ("gpt-5.6-sol", "gpt-5.6-sol"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
        ("claude-3-opus-latest", "claude-3-opus-latest"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4-20250514"),
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("gemini-2.5-pro", "gemini/gemini-2.5-pro"),
        ("gemini-2.0-flash-exp", "gemini/gemini-2.0-flash-exp"),
        ("deepseek-reasoner", "deepseek-reasoner"),
        ("magistral-medium-latest", "mistral/magistral-medium-latest"),
        ("openai/gpt-oss-120b", "groq/openai/gpt-oss-120b"),
        ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ];
    for (model, want) in expected {
        assert_eq!(key(model), Some(want), "{model}");
    }
}

#[test]
fn tables_can_be_overridden_and_merged() {
    let mut table = PriceTable::default();
    assert_eq!(table, *PriceTable::embedded());
    let before = table.len();
    let old = table
        .insert("GPT-4o", ModelPrice::new(dec("1"), dec("2")))
        .unwrap();
    assert_eq!(old.input, dec("0.0000025"));
    assert_eq!(table.len(), before);
    let usage = TokenUsage {
        input: 1,
        output: 1,
        ..TokenUsage::default()
    };
    assert_eq!(table.cost("openai/gpt-4o", &usage), Some(dec("3")));

    let newer = PriceTable::from_litellm_json(
        r#"{"brand-new": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}"#,
    )
    .unwrap();
    table.merge(newer);
    assert_eq!(table.len(), before + 1);
    assert_eq!(table.cost("brand-new", &usage), Some(dec("0.000003")));
    assert_eq!(PriceTable::empty().cost("gpt-4o", &usage), None);
}

#[test]
fn embedded_table_records_source_and_licence() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../data/prices.json")).unwrap();
    let meta = &json["_meta"];
    assert!(
        meta["license"]
            .as_str()
            .unwrap()
            .contains("Copyright (c) 2023 Berri AI")
    );
    assert_eq!(meta["sources"][0]["litellm_version"], "1.110.2");
    assert!(meta["generated"].is_string());
    assert!(PriceTable::embedded().len() > 1000);
}
