//! Per-token model prices and the exact cost of a request.
//!
//! The embedded table (`data/prices.json`) is generated from LiteLLM's
//! `model_prices_and_context_window.json` by `examples/gen_prices.rs`; its `_meta` entry names the
//! source files and the date. LiteLLM's data is MIT licensed (Copyright (c) 2023 Berri AI), see
//! `data/LICENSE-litellm.txt`.
//!
//! Prices are read from the JSON number's literal text, never through `f64`, so `2.5e-06` is
//! exactly `0.0000025`, and costs are computed with checked [`Decimal`] arithmetic, never rounded.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

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
/// use tower_activity::{ModelPrice, TokenUsage};
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
    /// assert_eq!(tower_activity::ModelPrice::LITELLM_FIELDS[0], "input_cost_per_token");
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
    /// let p = tower_activity::ModelPrice::new(Decimal::new(1, 6), Decimal::new(2, 6));
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
    /// use tower_activity::{ModelPrice, TokenUsage};
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
fn exact_mul(tokens: u64, price: Decimal) -> Option<Decimal> {
    let product = Decimal::from(tokens).checked_mul(price)?;
    (product.scale() == price.scale()).then_some(product)
}

/// `a + b`, `None` if the sum would lose digits (same reason as [`exact_mul`]).
fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = a.checked_add(b)?;
    (sum.scale() == a.scale().max(b.scale())).then_some(sum)
}

/// Why a LiteLLM price file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The text is not a JSON object (of model name → entry).
    #[error(
        "price table is not a JSON object of models: {0}; pass LiteLLM's model_prices_and_context_window.json"
    )]
    Json(#[source] serde_json::Error),
    /// A model's entry is not a JSON object.
    #[error(
        "model `{model}`: entry is not a JSON object; map each model to an object of prices (or remove it)"
    )]
    NotAnObject {
        /// The model's key.
        model: String,
    },
    /// A model's entry is an object that could not be read (e.g. a duplicate field).
    #[error("model `{model}`: entry is malformed: {source}; fix or remove the entry")]
    Entry {
        /// The model's key.
        model: String,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// A price field holds something other than a non-negative, exactly representable number.
    #[error("model `{model}`: `{field}` is `{value}`, which {reason}; fix or remove the field")]
    InvalidPrice {
        /// The model's key.
        model: String,
        /// The LiteLLM field name, e.g. `input_cost_per_token`.
        field: &'static str,
        /// The offending JSON text, verbatim.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Nothing in the file had both an input and an output price per token.
    #[error(
        "no model has both `input_cost_per_token` and `output_cost_per_token`; is this LiteLLM's price file?"
    )]
    NoPrices,
}

/// One LiteLLM entry, borrowing each price's literal JSON text.
#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(borrow, default)]
    alias_of: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input_cost_per_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_cost_per_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_read_input_token_cost: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_creation_input_token_cost: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_cost_per_reasoning_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input_cost_per_token_above_200k_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_cost_per_token_above_200k_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_read_input_token_cost_above_200k_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_creation_input_token_cost_above_200k_tokens: Option<&'a RawValue>,
}

impl RawEntry<'_> {
    /// The entry's prices; `Ok(None)` when it lacks an input or output price per token (image,
    /// audio and per-second models), which is not an error: such models are simply unpriced.
    fn price(&self, model: &str) -> Result<Option<ModelPrice>, PriceError> {
        let [f_in, f_out, f_cr, f_cw, f_re, f_in2, f_out2, f_cr2, f_cw2] =
            ModelPrice::LITELLM_FIELDS;
        let get = |field: &'static str, raw: Option<&RawValue>| {
            raw.map(|r| parse_price(model, field, r)).transpose()
        };
        let (Some(input), Some(output)) = (
            get(f_in, self.input_cost_per_token)?,
            get(f_out, self.output_cost_per_token)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(ModelPrice {
            input,
            output,
            cache_read: get(f_cr, self.cache_read_input_token_cost)?,
            cache_write: get(f_cw, self.cache_creation_input_token_cost)?,
            reasoning: get(f_re, self.output_cost_per_reasoning_token)?,
            input_above_200k: get(f_in2, self.input_cost_per_token_above_200k_tokens)?,
            output_above_200k: get(f_out2, self.output_cost_per_token_above_200k_tokens)?,
            cache_read_above_200k: get(f_cr2, self.cache_read_input_token_cost_above_200k_tokens)?,
            cache_write_above_200k: get(
                f_cw2,
                self.cache_creation_input_token_cost_above_200k_tokens,
            )?,
        }))
    }
}

/// Parses a JSON number's literal text exactly (`2.5e-06` is `0.0000025`, not the nearest f64).
fn parse_price(model: &str, field: &'static str, raw: &RawValue) -> Result<Decimal, PriceError> {
    let text = raw.get();
    let invalid = |reason| PriceError::InvalidPrice {
        model: model.to_owned(),
        field,
        value: text.to_owned(),
        reason,
    };
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(invalid("is not a JSON number (USD per token)"));
    }
    let value =
        parse_exact(text).ok_or_else(|| invalid("does not fit an exact 28-digit decimal"))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(invalid("is negative"));
    }
    Ok(value)
}

/// Exact decimal of a JSON number literal; `None` if it needs more than 28 significant digits
/// or decimal places (rather than rounding, which `Decimal::from_scientific` would do).
fn parse_exact(text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let mut value = Decimal::from_str_exact(mantissa).ok()?;
    let scale = i64::from(value.scale()) - i64::from(exponent);
    if scale >= 0 {
        value.set_scale(u32::try_from(scale).ok()?).ok()?;
    } else {
        value.set_scale(0).ok()?;
        let shift = u32::try_from(-scale).ok()?;
        let factor = Decimal::from(10u64.checked_pow(shift.min(19))?);
        value = value.checked_mul(factor)?;
        if shift > 19 {
            value = value.checked_mul(Decimal::from(10u64.checked_pow(shift - 19)?))?;
        }
    }
    Some(value)
}

/// Provider prefixes LiteLLM puts on model keys, tried in this order when the bare name has no
/// price: makers' own APIs first, then hosts, then routers, then Vertex AI.
const PROVIDER_PREFIXES: [&str; 13] = [
    "anthropic/",
    "openai/",
    "gemini/",
    "xai/",
    "mistral/",
    "deepseek/",
    "cohere/",
    "groq/",
    "perplexity/",
    "together_ai/",
    "fireworks_ai/",
    "openrouter/",
    "vertex_ai/",
];

/// Per-token USD prices of models, keyed by lowercase model name.
///
/// [`PriceTable::lookup`] resolves a model name case-insensitively. It first forms the name's
/// *spellings*: the name, then the name without each leading routing prefix in turn
/// (`openrouter/anthropic/claude-3.7-sonnet` → `anthropic/claude-3.7-sonnet` →
/// `claude-3.7-sonnet`), then the same with dots between digits as dashes (OpenRouter's
/// `claude-sonnet-4.5` is Anthropic's `claude-sonnet-4-5`). The first hit wins, in this order:
/// 1. a spelling exactly (`gpt-4o-2024-08-06`; `openai/gpt-4o` → `gpt-4o`);
/// 2. a spelling behind a provider prefix (`gemini-2.5-flash` → `gemini/gemini-2.5-flash`),
///    trying `anthropic/`, `openai/`, `gemini/`, `xai/`, `mistral/`, `deepseek/`, `cohere/`,
///    `groq/`, `perplexity/`, `together_ai/`, `fireworks_ai/`, `openrouter/`, `vertex_ai/`;
/// 3. steps 1–2 for the spellings without a date suffix (`-2024-08-06`, `-20250929`,
///    `@20240620`): `gpt-4o-2099-01-01` → `gpt-4o`.
///
/// Dropping a routing prefix comes before dropping a date because the dated model can cost
/// something else than the undated alias (`gpt-4o-2024-05-13` is dearer than `gpt-4o`).
///
/// ```
/// use tower_activity::{PriceTable, TokenUsage};
///
/// let table = PriceTable::embedded();
/// let (key, _) = table.lookup("openai/gpt-4o-2024-08-06").unwrap();
/// assert_eq!(key, "gpt-4o-2024-08-06");
/// let usage = TokenUsage { input: 1_000, output: 10, ..TokenUsage::default() };
/// assert!(table.cost("gpt-4o", &usage).is_some());
/// assert_eq!(table.cost("no-such-model", &usage), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
}

static EMBEDDED: LazyLock<PriceTable> = LazyLock::new(|| {
    // The file is generated, checked in and loaded by the tests, so this cannot fail at run time.
    PriceTable::from_litellm_json(include_str!("../data/prices.json"))
        .expect("data/prices.json is a valid LiteLLM price table")
});

impl Default for PriceTable {
    /// A copy of [`PriceTable::embedded`], to override single models with [`PriceTable::insert`].
    fn default() -> Self {
        Self::embedded().clone()
    }
}

impl PriceTable {
    /// The table embedded in the crate (`data/prices.json`), parsed once on first use.
    ///
    /// ```
    /// assert!(tower_activity::PriceTable::embedded().len() > 500);
    /// ```
    pub fn embedded() -> &'static PriceTable {
        &EMBEDDED
    }

    /// A table without models: every cost is `None`.
    ///
    /// ```
    /// assert!(tower_activity::PriceTable::empty().is_empty());
    /// ```
    pub fn empty() -> Self {
        Self {
            models: HashMap::new(),
        }
    }

    /// Loads LiteLLM's `model_prices_and_context_window.json` (or a file in its format).
    ///
    /// Skipped: `sample_spec`, keys starting with `_`, `{"alias_of": …}` entries, and entries
    /// without both `input_cost_per_token` and `output_cost_per_token` (`null` counts as absent).
    /// Prices are parsed from the literal number text, exactly. Keys are stored lowercase; of
    /// two keys equal but for case, the all-lowercase one wins.
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::PriceTable;
    ///
    /// let t = PriceTable::from_litellm_json(
    ///     r#"{"my-model": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}}"#,
    /// )?;
    /// assert_eq!(t.lookup("my-model").unwrap().1.input, Decimal::new(25, 7));
    /// # Ok::<(), tower_activity::PriceError>(())
    /// ```
    pub fn from_litellm_json(json: &str) -> Result<Self, PriceError> {
        // Sorted, so that of two keys equal but for case the lowercase one (sorting last) wins,
        // whatever the hash order.
        let entries: BTreeMap<String, &RawValue> =
            serde_json::from_str(json).map_err(PriceError::Json)?;
        let mut table = Self::empty();
        for (model, raw) in entries {
            if model == "sample_spec" || model.starts_with('_') {
                continue;
            }
            // serde would also read a struct from an array; only objects are entries.
            if !raw.get().starts_with('{') {
                return Err(PriceError::NotAnObject { model });
            }
            let entry: RawEntry<'_> = match serde_json::from_str(raw.get()) {
                Ok(entry) => entry,
                Err(source) => return Err(PriceError::Entry { model, source }),
            };
            if entry.alias_of.is_some() {
                continue;
            }
            if let Some(price) = entry.price(&model)? {
                table.insert(&model, price);
            }
        }
        if table.is_empty() {
            return Err(PriceError::NoPrices);
        }
        Ok(table)
    }

    /// Sets the price of `model` (stored lowercase), returning the price it replaces.
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::{ModelPrice, PriceTable};
    ///
    /// let mut t = PriceTable::default();
    /// t.insert("my-finetune", ModelPrice::new(Decimal::new(1, 6), Decimal::new(2, 6)));
    /// assert_eq!(t.lookup("My-Finetune").unwrap().0, "my-finetune");
    /// ```
    pub fn insert(&mut self, model: &str, price: ModelPrice) -> Option<ModelPrice> {
        self.models.insert(model.to_lowercase(), price)
    }

    /// Adds every model of `other`, replacing the prices of models both tables have (e.g. a
    /// current LiteLLM file over the embedded table).
    ///
    /// ```
    /// use tower_activity::PriceTable;
    ///
    /// let newer = PriceTable::from_litellm_json(
    ///     r#"{"gpt-4o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}}"#,
    /// )?;
    /// let mut t = PriceTable::default();
    /// t.merge(newer);
    /// assert_eq!(t.lookup("gpt-4o").unwrap().1.output.to_string(), "0.000001");
    /// # Ok::<(), tower_activity::PriceError>(())
    /// ```
    pub fn merge(&mut self, other: PriceTable) {
        self.models.extend(other.models);
    }

    /// The number of priced models.
    ///
    /// ```
    /// assert_eq!(tower_activity::PriceTable::empty().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the table has no models.
    ///
    /// ```
    /// assert!(!tower_activity::PriceTable::embedded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Every model key (lowercase) and its price, in no particular order.
    ///
    /// ```
    /// let t = tower_activity::PriceTable::embedded();
    /// assert_eq!(t.iter().count(), t.len());
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ModelPrice)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The price of `model` and the key it was found under, following the lookup chain
    /// described on [`PriceTable`]; `None` for an unknown model.
    ///
    /// ```
    /// let t = tower_activity::PriceTable::embedded();
    /// assert_eq!(t.lookup("claude-sonnet-4-5-20250929").unwrap().0, "claude-sonnet-4-5-20250929");
    /// assert!(t.lookup("definitely-not-a-model").is_none());
    /// ```
    pub fn lookup(&self, model: &str) -> Option<(&str, &ModelPrice)> {
        // The common case, a lowercase exact key, without allocating.
        if let Some((k, v)) = self.models.get_key_value(model) {
            return Some((k.as_str(), v));
        }
        let lower = model.trim().to_lowercase();
        let dashed = dots_between_digits_to_dashes(&lower);
        let spellings: Vec<&str> = routing_levels(&lower)
            .chain(dashed.iter().flat_map(|d| routing_levels(d)))
            .collect();
        let undated: Vec<&str> = spellings.iter().filter_map(|s| strip_date(s)).collect();
        let mut buf = String::with_capacity(lower.len() + 16);
        self.first_hit(&spellings, &mut buf)
            .or_else(|| self.first_hit(&undated, &mut buf))
    }

    /// The cost of `usage` on `model` (see [`ModelPrice::cost`]); `None` when the model has no
    /// price.
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tower_activity::{PriceTable, TokenUsage};
    ///
    /// // gpt-4o: $2.50 per 1M input tokens, $10 per 1M output tokens.
    /// let usage = TokenUsage { input: 1_000_000, output: 1_000_000, ..TokenUsage::default() };
    /// assert_eq!(PriceTable::embedded().cost("gpt-4o", &usage), Some(Decimal::new(125, 1)));
    /// ```
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<Decimal> {
        self.lookup(model)?.1.cost(usage)
    }

    /// Steps 1–2 of the lookup chain: every spelling exactly, then behind each prefix.
    fn first_hit(&self, spellings: &[&str], buf: &mut String) -> Option<(&str, &ModelPrice)> {
        let get = |key: &str| self.models.get_key_value(key).map(|(k, v)| (k.as_str(), v));
        spellings.iter().find_map(|s| get(s)).or_else(|| {
            spellings.iter().find_map(|s| {
                PROVIDER_PREFIXES.iter().find_map(|prefix| {
                    buf.clear();
                    buf.push_str(prefix);
                    buf.push_str(s);
                    get(buf)
                })
            })
        })
    }
}

/// `name`, then `name` without each leading `segment/` in turn.
fn routing_levels(name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(name), |n| {
        n.split_once('/')
            .map(|(_, rest)| rest)
            .filter(|rest| !rest.is_empty())
    })
}

/// `name` without a trailing `-YYYY-MM-DD`, `-YYYYMMDD` or `@YYYYMMDD`, if it has one.
fn strip_date(name: &str) -> Option<&str> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let b = name.as_bytes();
    let n = b.len();
    // -2024-08-06
    if n > 11 && b[n - 11] == b'-' && b[n - 6] == b'-' && b[n - 3] == b'-' {
        let (y, m, d) = (&name[n - 10..n - 6], &name[n - 5..n - 3], &name[n - 2..]);
        if digits(y) && digits(m) && digits(d) && y.starts_with("20") {
            return Some(&name[..n - 11]);
        }
    }
    // -20250929 or @20240620
    if n > 9
        && matches!(b[n - 9], b'-' | b'@')
        && digits(&name[n - 8..])
        && name[n - 8..].starts_with("20")
    {
        return Some(&name[..n - 9]);
    }
    None
}

/// `name` with every `.` between two digits replaced by `-`; `None` if there is none.
fn dots_between_digits_to_dashes(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let is_version_dot = |i: usize| {
        b[i] == b'.'
            && i > 0
            && i + 1 < b.len()
            && b[i - 1].is_ascii_digit()
            && b[i + 1].is_ascii_digit()
    };
    let dots: Vec<usize> = (0..b.len()).filter(|&i| is_version_dot(i)).collect();
    if dots.is_empty() {
        return None;
    }
    let mut out = b.to_vec();
    for i in dots {
        out[i] = b'-';
    }
    // Replacing one ASCII byte by another keeps the text valid UTF-8.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn literals_parse_exactly() {
        assert_eq!(parse_exact("2.5e-06"), Some(dec("0.0000025")));
        assert_eq!(parse_exact("3e-07"), Some(dec("0.0000003")));
        assert_eq!(parse_exact("1.25e-06"), Some(dec("0.00000125")));
        assert_eq!(parse_exact("5.00003e-06"), Some(dec("0.00000500003")));
        assert_eq!(parse_exact("2.5E-6"), Some(dec("0.0000025")));
        assert_eq!(parse_exact("1.5e+2"), Some(dec("150")));
        assert_eq!(parse_exact("12e3"), Some(dec("12000")));
        assert_eq!(parse_exact("0.0"), Some(Decimal::ZERO));
        assert_eq!(parse_exact("0"), Some(Decimal::ZERO));
        // The f64 nearest to 1e-07 is 9.99999999999999954748e-08; the literal must not become it.
        assert_eq!(parse_exact("1e-07").unwrap().to_string(), "0.0000001");
    }

    #[test]
    fn literals_that_cannot_be_exact_are_refused() {
        assert_eq!(parse_exact("1e-29"), None);
        assert_eq!(parse_exact("1.00000000000000000000000000001"), None);
        assert_eq!(parse_exact("1e40"), None);
        assert_eq!(parse_exact("abc"), None);
        assert_eq!(parse_exact("1e"), None);
    }

    fn load_err(json: &str) -> PriceError {
        PriceTable::from_litellm_json(json).unwrap_err()
    }

    #[test]
    fn bad_price_names_model_field_and_value() {
        let e = load_err(r#"{"m": {"input_cost_per_token": "0.1", "output_cost_per_token": 1}}"#);
        assert!(
            matches!(&e, PriceError::InvalidPrice { model, field: "input_cost_per_token", value, .. }
                if model == "m" && value == "\"0.1\""),
            "{e:?}"
        );
        let e =
            load_err(r#"{"x": {"input_cost_per_token": 1e-06, "output_cost_per_token": -2e-06}}"#);
        assert!(
            matches!(&e, PriceError::InvalidPrice { model, field: "output_cost_per_token", reason: "is negative", .. } if model == "x"),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("`x`") && msg.contains("-2e-06") && msg.contains("fix or remove"),
            "{msg}"
        );
        let e = load_err(
            r#"{"y": {"input_cost_per_token": 1, "output_cost_per_token": 1, "cache_read_input_token_cost": 1e-40}}"#,
        );
        assert!(
            matches!(
                &e,
                PriceError::InvalidPrice {
                    field: "cache_read_input_token_cost",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn bad_structure_is_reported() {
        assert!(matches!(load_err("[1, 2]"), PriceError::Json(_)));
        assert!(matches!(load_err("{"), PriceError::Json(_)));
        let e = load_err(
            r#"{"ok": {"input_cost_per_token": 1, "output_cost_per_token": 1}, "m": [1]}"#,
        );
        assert!(
            matches!(&e, PriceError::NotAnObject { model } if model == "m"),
            "{e:?}"
        );
        let e = load_err(r#"{"d": {"input_cost_per_token": 1, "input_cost_per_token": 2}}"#);
        assert!(
            matches!(&e, PriceError::Entry { model, .. } if model == "d"),
            "{e:?}"
        );
        assert!(matches!(load_err("{}"), PriceError::NoPrices));
    }

    #[test]
    fn skipped_entries() {
        let t = PriceTable::from_litellm_json(
            r#"{
                "sample_spec": {"input_cost_per_token": "text", "output_cost_per_token": 0.0},
                "_meta": {"input_cost_per_token": 1, "output_cost_per_token": 1},
                "alias": {"alias_of": "priced"},
                "image-model": {"output_cost_per_image": 0.04, "input_cost_per_token": 1e-06},
                "null-output": {"input_cost_per_token": 1e-06, "output_cost_per_token": null},
                "Priced": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                           "cache_read_input_token_cost": null, "max_tokens": 4096}
            }"#,
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        let (key, price) = t.lookup("PRICED").unwrap();
        assert_eq!(key, "priced");
        assert_eq!(price.cache_read, None);
    }

    #[test]
    fn date_suffixes() {
        assert_eq!(strip_date("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            strip_date("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            strip_date("claude-3-5-sonnet@20240620"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(strip_date("gpt-4-0613"), None);
        assert_eq!(strip_date("model-12345678"), None);
        assert_eq!(strip_date("20250929"), None);
    }

    #[test]
    fn version_dots() {
        assert_eq!(
            dots_between_digits_to_dashes("claude-sonnet-4.5").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(dots_between_digits_to_dashes("a.b-4.x"), None);
        assert_eq!(
            dots_between_digits_to_dashes("é-3.7").as_deref(),
            Some("é-3-7")
        );
    }

    #[test]
    fn arithmetic_that_would_round_is_refused() {
        // 20 digits × 19 digits needs more than the 96-bit mantissa: rust_decimal would round.
        let p = ModelPrice::new(dec("1.234567890123456789"), Decimal::ZERO);
        let usage = TokenUsage {
            input: u64::MAX,
            ..TokenUsage::default()
        };
        assert_eq!(p.cost(&usage), None);
        // Far beyond realistic (10^12 tokens), with every part priced, is still exact.
        let big = 1_000_000_000_000;
        let usage = TokenUsage {
            input: big,
            output: big,
            cache_read: big / 2,
            cache_write: 1,
            reasoning: 7,
        };
        let (p_in, p_out) = (dec("0.00000500003"), dec("0.0000125"));
        let expected = p_in * Decimal::from(big) + p_out * Decimal::from(big);
        assert_eq!(ModelPrice::new(p_in, p_out).cost(&usage), Some(expected));
        assert_eq!(exact_mul(3, dec("0.5")), Some(dec("1.5")));
    }
}
