//! `GATEWAY_CONFIG=FILE`: the upstreams and what each serves, in TOML.
//!
//! ```toml
//! [[upstream]]
//! name = "openai"                  # what records carry in `upstream` (never a URL)
//! base_url = "https://api.openai.com"
//! api_key_env = "OPENAI_API_KEY"   # the key is read from this variable, never written in the file
//! apis = ["openai.chat", "openai.responses", "openai.embeddings"]
//! models = ["gpt-*", "o*", "text-embedding-*"]   # optional globs; first matching upstream wins
//! forward_headers = ["openai-beta"] # client headers allowed through, beyond the API's own
//! rate_limit_headers = true        # optional: pass the provider's x-ratelimit-* back
//! ```
//!
//! `apis` takes the records' `api` values: `openai.chat`, `openai.responses`,
//! `openai.embeddings`, `anthropic.messages`, `gemini.generate` (default: all of them).
//! `models` are globs where `*` matches any run of characters (default: every model).
//! Each API's key goes upstream the way the API expects: `Authorization: Bearer` (OpenAI),
//! `x-api-key` with `anthropic-version` (Anthropic), `x-goog-api-key` (Gemini).
//!
//! An error names the file, the line and the key: `gateway.toml:7: upstream[1].apis: unknown
//! API "openai.chats"; use one of …`. Unknown keys are errors too (a typo is not ignored).

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use axum::http::HeaderName;
use serde::Deserialize;
use toml::Spanned;
use tower_activity::LlmApi;

use crate::config::{UpstreamConfig, UpstreamUrl, redact};
use crate::headers::NEVER_FORWARDED;

/// Every API an upstream may serve, by its records' name.
pub const APIS: [LlmApi; 5] = [
    LlmApi::OpenAiChat,
    LlmApi::OpenAiResponses,
    LlmApi::OpenAiEmbeddings,
    LlmApi::AnthropicMessages,
    LlmApi::GeminiGenerate,
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    upstream: Vec<Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Spanned<String>,
    base_url: Spanned<String>,
    api_key_env: Option<Spanned<String>>,
    apis: Option<Spanned<Vec<Spanned<String>>>>,
    models: Option<Vec<Spanned<String>>>,
    forward_headers: Option<Vec<Spanned<String>>>,
    rate_limit_headers: Option<bool>,
}

/// Reads `path`; `env` looks up the variables `api_key_env` names.
pub fn load(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<UpstreamConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("GATEWAY_CONFIG: cannot read {}: {e}", path.display()))?;
    parse(&path.display().to_string(), &text, env)
}

/// Parses a configuration named `file` (for messages) from `text`.
pub fn parse(
    file: &str,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<UpstreamConfig>, String> {
    let at = |span: Range<usize>| format!("{file}:{}", line_of(text, span.start));
    let parsed: File = toml::from_str(text).map_err(|e| match e.span() {
        // The line itself names the key (toml's message may not); a URL in it loses its
        // userinfo.
        Some(span) => {
            let line = line_of(text, span.start);
            let shown = redact(text.lines().nth(line - 1).unwrap_or("").trim());
            let shown: String = shown.chars().take(120).collect();
            format!("{file}:{line}: {} (at `{shown}`)", e.message().trim())
        }
        None => format!("{file}: {}", e.message().trim()),
    })?;
    if parsed.upstream.is_empty() {
        return Err(format!(
            "{file}: no [[upstream]] table: name at least one (see the README's examples)"
        ));
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(parsed.upstream.len());
    for (i, entry) in parsed.upstream.iter().enumerate() {
        let entry = entry.get_ref();
        let fail = |span: Range<usize>, key: &str, why: String| {
            Err(format!("{}: upstream[{i}].{key}: {why}", at(span)))
        };

        let name = entry.name.get_ref().trim();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok {
            return fail(
                entry.name.span(),
                "name",
                format!("{name:?} must be 1 to 64 letters, digits, `.`, `_` or `-`"),
            );
        }
        if !names.insert(name.to_owned()) {
            return fail(entry.name.span(), "name", format!("{name:?} is used twice"));
        }

        let url = match UpstreamUrl::parse(entry.base_url.get_ref()) {
            Ok(url) => url,
            Err(e) => return fail(entry.base_url.span(), "base_url", e),
        };

        let api_key = match &entry.api_key_env {
            None => None,
            Some(var) => {
                let var_name = var.get_ref().trim();
                match env(var_name) {
                    Some(key) if !key.trim().is_empty() => Some(key.trim().to_owned()),
                    _ => {
                        return fail(
                            var.span(),
                            "api_key_env",
                            format!(
                                "the variable {var_name} is not set: export the key in it (the file names the variable, never the key)"
                            ),
                        );
                    }
                }
            }
        };

        let apis = match &entry.apis {
            None => APIS.to_vec(),
            Some(list) if list.get_ref().is_empty() => {
                return fail(
                    list.span(),
                    "apis",
                    "is empty: name the APIs this upstream serves".into(),
                );
            }
            Some(list) => {
                let mut apis = Vec::new();
                for api in list.get_ref() {
                    match APIS.iter().find(|a| a.as_str() == api.get_ref()) {
                        Some(a) => apis.push(*a),
                        None => {
                            let known: Vec<&str> = APIS.iter().map(|a| a.as_str()).collect();
                            return fail(
                                api.span(),
                                "apis",
                                format!(
                                    "unknown API {:?}; use one of {}",
                                    api.get_ref(),
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                }
                apis
            }
        };

        let mut models = Vec::new();
        for glob in entry.models.iter().flatten() {
            let g = glob.get_ref().trim();
            if g.is_empty() {
                return fail(glob.span(), "models", "has an empty glob".into());
            }
            models.push(g.to_owned());
        }

        let mut forward_headers = Vec::new();
        for header in entry.forward_headers.iter().flatten() {
            let text = header.get_ref().trim().to_ascii_lowercase();
            let Ok(name) = HeaderName::from_bytes(text.as_bytes()) else {
                return fail(
                    header.span(),
                    "forward_headers",
                    format!("{:?} is not a header name", header.get_ref()),
                );
            };
            if NEVER_FORWARDED.contains(&name.as_str()) {
                return fail(
                    header.span(),
                    "forward_headers",
                    format!(
                        "{name} carries credentials or describes a connection: it is never forwarded"
                    ),
                );
            }
            forward_headers.push(name);
        }

        out.push(UpstreamConfig {
            name: name.to_owned(),
            url,
            api_key,
            apis,
            models,
            forward_headers,
            rate_limit_headers: entry.rate_limit_headers.unwrap_or(false),
        });
    }
    Ok(out)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[upstream]]
name = "openai"
base_url = "https://api.openai.com"
api_key_env = "OPENAI_API_KEY"
apis = ["openai.chat", "openai.responses", "openai.embeddings"]
models = ["gpt-*", "o*", "text-embedding-*"]
forward_headers = ["OpenAI-Beta"]

[[upstream]]
name = "anthropic"
base_url = "https://api.anthropic.com"
api_key_env = "ANTHROPIC_API_KEY"
apis = ["anthropic.messages"]
rate_limit_headers = true
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "OPENAI_API_KEY" => Some("sk-openai".into()),
            "ANTHROPIC_API_KEY" => Some("sk-ant".into()),
            _ => None,
        }
    }

    #[test]
    fn the_documented_example_reads() {
        let ups = parse("gw.toml", EXAMPLE, env).unwrap();
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[0].name, "openai");
        assert_eq!(ups[0].api_key.as_deref(), Some("sk-openai"));
        assert_eq!(ups[0].apis.len(), 3);
        assert_eq!(ups[0].models, ["gpt-*", "o*", "text-embedding-*"]);
        assert_eq!(ups[0].forward_headers, ["openai-beta"]);
        assert!(!ups[0].rate_limit_headers);
        assert_eq!(ups[1].apis, [LlmApi::AnthropicMessages]);
        assert!(ups[1].models.is_empty() && ups[1].rate_limit_headers);
    }

    #[test]
    fn the_readmes_four_providers_read() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("README has a ```toml block");
        let ups = parse("README.md", block, |name| Some(format!("key-{name}"))).unwrap();
        let names: Vec<&str> = ups.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["openai", "anthropic", "gemini", "openrouter"]);
        assert_eq!(ups[3].url.to_string(), "https://openrouter.ai/api");
        assert_eq!(ups[2].apis, [LlmApi::GeminiGenerate]);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                EXAMPLE.replace("\"openai.responses\"", "\"openai.respones\""),
                "gw.toml:6: upstream[0].apis: unknown API \"openai.respones\"",
            ),
            (
                EXAMPLE.replace("ANTHROPIC_API_KEY", "NOPE_KEY"),
                "gw.toml:13: upstream[1].api_key_env: the variable NOPE_KEY is not set",
            ),
            (
                EXAMPLE.replace("https://api.anthropic.com", "ftp://x"),
                "gw.toml:12: upstream[1].base_url: must start with",
            ),
            (
                EXAMPLE.replace("\"OpenAI-Beta\"", "\"Authorization\""),
                "gw.toml:8: upstream[0].forward_headers: authorization carries credentials",
            ),
            (
                EXAMPLE.replace("name = \"anthropic\"", "name = \"openai\""),
                "gw.toml:11: upstream[1].name: \"openai\" is used twice",
            ),
            (
                EXAMPLE.replace("models =", "modles ="),
                "gw.toml:7: unknown field `modles`",
            ),
            (
                EXAMPLE.replace(
                    "apis = [\"anthropic.messages\"]",
                    "apis = \"anthropic.messages\"",
                ),
                "gw.toml:14: invalid type",
            ),
            (
                EXAMPLE.replace("base_url = \"https://api.openai.com\"\n", ""),
                "gw.toml:2: missing field `base_url`",
            ),
            ("x = ".to_owned(), "gw.toml:1:"),
            (String::new(), "gw.toml: no [[upstream]] table"),
        ];
        for (text, want) in cases {
            let err = parse("gw.toml", &text, env).unwrap_err();
            assert!(err.starts_with(want), "want {want:?}, got {err:?}");
        }
        let text = EXAMPLE.replace(
            "apis = [\"anthropic.messages\"]",
            "apis = \"anthropic.messages\"",
        );
        let err = parse("gw.toml", &text, env).unwrap_err();
        assert!(
            err.ends_with("(at `apis = \"anthropic.messages\"`)"),
            "the key is shown: {err}"
        );
        let text = EXAMPLE.replace(
            "\"https://api.openai.com\"",
            "\"https://ada:hunter2@api.openai.com",
        );
        let err = parse("gw.toml", &text, env).unwrap_err();
        assert!(
            err.starts_with("gw.toml:4:") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn userinfo_never_appears_in_an_error() {
        let text = EXAMPLE.replace(
            "https://api.openai.com",
            "gopher://user:hunter2@api.openai.com",
        );
        let err = parse("gw.toml", &text, env).unwrap_err();
        assert!(
            err.contains("upstream[0].base_url") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
