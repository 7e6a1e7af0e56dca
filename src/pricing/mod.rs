//! Per-token model prices and the exact cost of a request.
//!
//! The embedded table (`data/prices.json`) is generated from LiteLLM's
//! `model_prices_and_context_window.json` by `examples/gen_prices.rs`; its `_meta` entry names the
//! source files and the date. LiteLLM's data is MIT licensed (Copyright (c) 2023 Berri AI), see
//! `data/LICENSE-litellm.txt`.
//!
//! Prices are read from the JSON number's literal text, never through `f64`, so `2.5e-06` is
//! exactly `0.0000025`, and costs are computed with checked [`Decimal`] arithmetic, never rounded.

mod cost;
mod exact;
mod parse;
mod price;
mod rate;
mod record;
mod shared;
mod source;
mod usage;

pub use self::cost::CostBreakdown;
pub use self::parse::PriceError;
use self::parse::RawEntry;
pub(crate) use self::parse::parse_exact;
pub use self::price::{ModelPrice, SearchPrice};
pub use self::rate::{PricingTier, Rate, RateKey, SearchContextSize};
pub use self::shared::SharedPrices;
pub use self::source::TableSource;
pub use self::usage::TokenUsage;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use fnv::FnvBuildHasher;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
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
/// use tower_activity::pricing::{PriceTable, TokenUsage};
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
    /// Hashed with FNV-1a (a multiply per byte), not `HashMap`'s SipHash: the keys are the
    /// table's own, fixed when it is loaded, and a request's model name is only looked up,
    /// never inserted, so it cannot pile keys into one bucket and the hash need not resist
    /// chosen keys. SipHash cost ≈ 200 instructions per lookup of a 22-byte name.
    models: HashMap<String, ModelPrice, FnvBuildHasher>,
    source: TableSource,
    /// `source` as every priced record's `metadata.price_table`, made once per name and
    /// shared with the records (see [`Metadata`](crate::Metadata)).
    source_json: Arc<Value>,
}

static EMBEDDED: LazyLock<PriceTable> = LazyLock::new(|| {
    let json = include_str!("../../data/prices.json");
    // The file is generated, checked in and loaded by the tests, so this cannot fail at run time.
    let mut table = PriceTable::from_litellm_json(json)
        .expect("data/prices.json is a valid LiteLLM price table");
    table.set_source(TableSource::of_generated(json));
    table
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
    /// assert!(tower_activity::pricing::PriceTable::embedded().len() > 500);
    /// ```
    pub fn embedded() -> &'static PriceTable {
        &EMBEDDED
    }

    /// A table without models: every cost is `None`.
    ///
    /// ```
    /// assert!(tower_activity::pricing::PriceTable::empty().is_empty());
    /// ```
    pub fn empty() -> Self {
        let mut table = Self {
            models: HashMap::default(),
            source: TableSource::unnamed(),
            source_json: Arc::new(Value::Null),
        };
        table.set_source(TableSource::unnamed());
        table
    }

    /// The table under a name (`source`: a file path, a URL …; `date`: as of when), which
    /// every record it prices carries in `metadata.price_table`. A table loaded with
    /// [`from_litellm_json`](Self::from_litellm_json) or made with [`empty`](Self::empty) is
    /// `unnamed` until named; the embedded one is named after its LiteLLM versions.
    ///
    /// ```
    /// use tower_activity::pricing::PriceTable;
    ///
    /// let t = PriceTable::from_litellm_json(
    ///     r#"{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}"#,
    /// )?;
    /// assert_eq!(t.source().source, "unnamed");
    /// let t = t.named("/etc/prices.json", Some("2026-12-02T00:00:00Z"));
    /// assert_eq!(t.source().date.as_deref(), Some("2026-12-02T00:00:00Z"));
    /// # Ok::<(), tower_activity::PriceError>(())
    /// ```
    pub fn named(mut self, source: impl Into<String>, date: Option<&str>) -> Self {
        self.set_source(TableSource {
            source: source.into(),
            date: date.map(str::to_owned),
        });
        self
    }

    fn set_source(&mut self, source: TableSource) {
        self.source_json = Arc::new(json!({ "source": source.source, "date": source.date }));
        self.source = source;
    }

    /// [`source`](Self::source) as JSON, the value of `metadata.price_table`.
    pub(crate) fn source_json(&self) -> &Arc<Value> {
        &self.source_json
    }

    /// Where the prices come from (see [`named`](Self::named)).
    pub fn source(&self) -> &TableSource {
        &self.source
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
    /// use tower_activity::pricing::PriceTable;
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
            if entry.is_alias() {
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
    /// use tower_activity::pricing::{ModelPrice, PriceTable};
    ///
    /// let mut t = PriceTable::default();
    /// t.insert("my-finetune", ModelPrice::new(Decimal::new(1, 6), Decimal::new(2, 6)));
    /// assert_eq!(t.lookup("My-Finetune").unwrap().0, "my-finetune");
    /// ```
    pub fn insert(&mut self, model: &str, price: ModelPrice) -> Option<ModelPrice> {
        self.models.insert(model.to_lowercase(), price)
    }

    /// Adds every model of `other`, replacing the prices of models both tables have (e.g. a
    /// current LiteLLM file over the embedded table). The table keeps its own name: name the
    /// result with [`named`](Self::named).
    ///
    /// ```
    /// use tower_activity::pricing::PriceTable;
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
    /// assert_eq!(tower_activity::pricing::PriceTable::empty().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the table has no models.
    ///
    /// ```
    /// assert!(!tower_activity::pricing::PriceTable::embedded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Every model key (lowercase) and its price, in no particular order.
    ///
    /// ```
    /// let t = tower_activity::pricing::PriceTable::embedded();
    /// assert_eq!(t.iter().count(), t.len());
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ModelPrice)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The price of `model` and the key it was found under, following the lookup chain
    /// described on [`PriceTable`]; `None` for an unknown model.
    ///
    /// ```
    /// let t = tower_activity::pricing::PriceTable::embedded();
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
    /// use tower_activity::pricing::{PriceTable, TokenUsage};
    ///
    /// // gpt-4o: $2.50 per 1M input tokens, $10 per 1M output tokens.
    /// let usage = TokenUsage { input: 1_000_000, output: 1_000_000, ..TokenUsage::default() };
    /// assert_eq!(PriceTable::embedded().cost("gpt-4o", &usage), Some(Decimal::new(125, 1)));
    /// ```
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<Decimal> {
        self.lookup(model)?.1.cost(usage)
    }

    /// The cost of `usage` on `model` part by part (see [`ModelPrice::cost_breakdown`]);
    /// `None` when the model has no price.
    ///
    /// ```
    /// use tower_activity::pricing::{PriceTable, TokenUsage};
    ///
    /// // claude-sonnet-4-5: 1-hour cache writes at $6 per 1M tokens, 5-minute ones at $3.75.
    /// let usage = TokenUsage {
    ///     input: 3_000, cache_write: 3_000, cache_write_1h: 1_000, ..TokenUsage::default()
    /// };
    /// let b = PriceTable::embedded().cost_breakdown("claude-sonnet-4-5", &usage).unwrap();
    /// assert_eq!(b.parts["cache_write_1h"].to_string(), "0.006");
    /// assert_eq!(b.parts["cache_write_5m"].to_string(), "0.0075");
    /// assert_eq!(b.total.to_string(), "0.0135");
    /// ```
    pub fn cost_breakdown(&self, model: &str, usage: &TokenUsage) -> Option<CostBreakdown> {
        self.lookup(model)?.1.cost_breakdown(usage)
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
    use super::exact::exact_mul;
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn load_err(json: &str) -> PriceError {
        PriceTable::from_litellm_json(json).unwrap_err()
    }

    #[test]
    fn the_record_stamp_follows_the_name() {
        let stamp = |t: &PriceTable| Value::clone(t.source_json());
        let e = PriceTable::embedded();
        assert_eq!(
            stamp(e),
            json!({ "source": e.source().source, "date": e.source().date })
        );
        assert_eq!(
            stamp(&PriceTable::empty()),
            json!({ "source": "unnamed", "date": null })
        );
        let named = PriceTable::default().named("prices.json", Some("2026-12-02"));
        assert_eq!(
            stamp(&named),
            json!({ "source": "prices.json", "date": "2026-12-02" })
        );
        assert_eq!(named.clone(), named, "a stamp does not break equality");
    }

    #[test]
    fn bad_price_names_model_field_and_value() {
        let e = load_err(r#"{"m": {"input_cost_per_token": "0.1", "output_cost_per_token": 1}}"#);
        assert!(
            matches!(&e, PriceError::InvalidPrice { model, field, value, .. }
                if model == "m" && field == "input_cost_per_token" && value == "\"0.1\""),
            "{e:?}"
        );
        let e =
            load_err(r#"{"x": {"input_cost_per_token": 1e-06, "output_cost_per_token": -2e-06}}"#);
        assert!(
            matches!(&e, PriceError::InvalidPrice { model, field, reason: "is negative", .. }
                if model == "x" && field == "output_cost_per_token"),
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
            matches!(&e, PriceError::InvalidPrice { field, .. } if field == "cache_read_input_token_cost"),
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
        assert_eq!(price.price(RateKey::base(Rate::CacheRead)), None);
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
            ..TokenUsage::default()
        };
        let (p_in, p_out) = (dec("0.00000500003"), dec("0.0000125"));
        let expected = p_in * Decimal::from(big) + p_out * Decimal::from(big);
        assert_eq!(ModelPrice::new(p_in, p_out).cost(&usage), Some(expected));
        assert_eq!(exact_mul(3, dec("0.5")), Some(dec("1.5")));
        // A free model's "0.000000" times any count is 0, not a refusal (the zero product
        // has no scale left to compare).
        let free = ModelPrice::new(dec("0.000000"), dec("0.0"));
        let usage = TokenUsage {
            input: 5,
            output: 7,
            tool_use_input: 1,
            ..TokenUsage::default()
        };
        assert_eq!(free.cost(&usage), Some(Decimal::ZERO));
    }
}
