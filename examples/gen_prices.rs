//! Generates the embedded price table `data/prices.json` from LiteLLM price files.
//!
//! ```text
//! cargo run --example gen_prices -- ../shared/data/litellm-prices-1.110.2.json \
//!     ../shared/data/litellm-prices-1.74.0.json > data/prices.json
//! ```
//!
//! Files are given newest first: a model in a newer file wins, an older file only adds models
//! every newer file dropped. Kept: entries whose `mode` is in [`MODES`] and whose
//! `litellm_provider` is in [`PROVIDERS`], with both per-token input and output prices; only the
//! price fields the crate reads ([`ModelPrice::reads_litellm_key`]: every per-token price a
//! response can trigger, with its long-context and service-tier variants, and the web search
//! price) are written, each as the exact literal text of the source (never re-formatted through
//! a float). Keys are sorted, one model per line, so regenerating gives a readable diff.
//!
//! Vertex AI's Gemini entries (`litellm_provider: vertex_ai-language-models`) carry bare keys
//! (`gemini-2.5-pro`) that would shadow the Gemini API's own prices (`gemini/gemini-2.5-pro`), so
//! they are written as `vertex_ai/<key>`: a bare Gemini name then resolves to the Gemini API price
//! and Vertex-only models still resolve through the `vertex_ai/` prefix.
//!
//! The output is checked by loading it with [`PriceTable::from_litellm_json`] before printing.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde_json::value::RawValue;
use tower_activity::pricing::{ModelPrice, PriceTable, Rate};

/// LiteLLM modes priced per token by the APIs the crate understands.
const MODES: [&str; 4] = ["chat", "responses", "completion", "embedding"];

/// The major providers (LiteLLM's `litellm_provider`); cloud resellers (Azure, Bedrock …) are
/// left out because their keys are deployment names, not the model names APIs report.
const PROVIDERS: [&str; 17] = [
    "openai",
    "text-completion-openai",
    "anthropic",
    "gemini",
    "vertex_ai-language-models",
    "vertex_ai-anthropic_models",
    "mistral",
    "codestral",
    "deepseek",
    "xai",
    "groq",
    "cohere",
    "cohere_chat",
    "openrouter",
    "perplexity",
    "fireworks_ai",
    "together_ai",
];

const LICENSE: &str =
    "MIT License, Copyright (c) 2023 Berri AI (LiteLLM); see data/LICENSE-litellm.txt";

/// The fields of an entry the filter looks at.
#[derive(serde::Deserialize)]
struct Meta {
    litellm_provider: Option<String>,
    mode: Option<String>,
}

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("error: no input files");
        eprintln!("hint: gen_prices NEWEST.json [OLDER.json …] > data/prices.json");
        return ExitCode::FAILURE;
    }
    match generate(&paths) {
        Ok(json) => {
            print!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "hint: pass LiteLLM model_prices_and_context_window.json files, newest first"
            );
            ExitCode::FAILURE
        }
    }
}

fn generate(paths: &[String]) -> Result<String, String> {
    let texts = paths
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // model key -> (field -> literal price text)
    let mut models: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (path, text) in paths.iter().zip(&texts) {
        let entries: BTreeMap<String, &RawValue> =
            serde_json::from_str(text).map_err(|e| format!("{path}: {e}"))?;
        for (key, raw) in &entries {
            // A key any newer file has (priced, filtered out or not) is that file's decision.
            if seen.contains(key) {
                continue;
            }
            if let Some((out_key, prices)) = select(key, raw) {
                // A renamed key must not take the place of a real entry of this or a newer file.
                let taken =
                    out_key != *key && (entries.contains_key(&out_key) || seen.contains(&out_key));
                if !taken {
                    models.entry(out_key).or_insert(prices);
                }
            }
        }
        seen.extend(entries.into_keys());
    }
    let json = render(paths, &models)?;
    let table =
        PriceTable::from_litellm_json(&json).map_err(|e| format!("generated table: {e}"))?;
    if table.len() != models.len() {
        return Err(format!(
            "generated table has {} models after loading, {} written (keys equal ignoring case?)",
            table.len(),
            models.len()
        ));
    }
    Ok(json)
}

/// The output key and price fields of an entry the table keeps.
fn select(key: &str, raw: &RawValue) -> Option<(String, BTreeMap<String, String>)> {
    if key == "sample_spec" || key.starts_with('_') || !raw.get().starts_with('{') {
        return None;
    }
    let meta: Meta = serde_json::from_str(raw.get()).ok()?;
    let provider = meta.litellm_provider?;
    if !PROVIDERS.contains(&provider.as_str()) || !MODES.contains(&meta.mode?.as_str()) {
        return None;
    }
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(raw.get()).ok()?;
    let prices: BTreeMap<String, String> = fields
        .into_iter()
        .filter(|(f, v)| ModelPrice::reads_litellm_key(f) && v.get() != "null")
        .map(|(f, v)| Some((f, compact(v)?)))
        .collect::<Option<_>>()?;
    let [input, output] = [Rate::Input, Rate::Output].map(Rate::litellm_key);
    if !prices.contains_key(input) || !prices.contains_key(output) {
        return None;
    }
    let out_key = if provider == "vertex_ai-language-models" && !key.contains('/') {
        format!("vertex_ai/{key}")
    } else {
        key.to_owned()
    };
    Some((out_key, prices))
}

/// A value's literal text on one line: a number as written, an object (the web search price
/// by context size) rebuilt from its members' literal texts. `None` for an unreadable object.
fn compact(value: &RawValue) -> Option<String> {
    if !value.get().starts_with('{') {
        return Some(value.get().to_owned());
    }
    let members: BTreeMap<String, &RawValue> = serde_json::from_str(value.get()).ok()?;
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            Some(format!(
                "{}:{}",
                serde_json::to_string(k).ok()?,
                compact(v)?
            ))
        })
        .collect::<Option<_>>()?;
    Some(format!("{{{}}}", inner.join(",")))
}

/// LiteLLM-format JSON: `_meta` first, then one model per line, keys sorted.
fn render(
    paths: &[String],
    models: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<String, String> {
    let sources: Vec<serde_json::Value> = paths
        .iter()
        .map(|p| {
            let file = p.rsplit(['/', '\\']).next().unwrap_or(p);
            let version = file
                .strip_prefix("litellm-prices-")
                .and_then(|v| v.strip_suffix(".json"))
                .unwrap_or("unknown");
            serde_json::json!({ "file": file, "litellm_version": version })
        })
        .collect();
    let meta = serde_json::json!({
        "generator": "examples/gen_prices.rs",
        "generated": chrono::Utc::now().date_naive().to_string(),
        "sources": sources,
        "precedence": "newest first: an older source only adds models the newer ones dropped",
        "providers": PROVIDERS,
        "modes": MODES,
        "note": "vertex_ai-language-models keys without a prefix are stored as vertex_ai/<key>",
        "license": LICENSE,
    });
    let mut out = String::new();
    let mut w = |s: &str| out.push_str(s);
    w("{\"_meta\":");
    w(&meta.to_string());
    for (key, prices) in models {
        w(",\n");
        w(&serde_json::to_string(key).map_err(|e| e.to_string())?);
        w(":{");
        for (i, (field, value)) in prices.iter().enumerate() {
            if i > 0 {
                w(",");
            }
            w(&format!("\"{field}\":{value}"));
        }
        w("}");
    }
    w("\n}\n");
    Ok(out)
}
