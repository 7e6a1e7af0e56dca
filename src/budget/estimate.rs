//! The upper estimate a request reserves: input from its prompt text (the estimate the
//! record uses when a provider reports no usage), output from its stated token limit (else
//! the configured default), priced with the layer's table.

use std::borrow::Cow;

use bytes::Bytes;

use crate::account::CHARS_PER_TOKEN;
use crate::pricing::{PriceTable, TokenUsage};
use crate::record::LlmApi;
use crate::request::{RequestFacts, prompt_chars};

use super::usage::Usage;

/// What the layer read of a request body.
#[derive(Debug)]
pub(super) enum Read {
    /// The whole body.
    Whole(Bytes),
    /// Only this many bytes (larger than the cap, or the body failed): the input estimate
    /// counts every byte as a character.
    Part(u64),
    /// Nothing (not an LLM request, or no body).
    Nothing,
}

/// A request's estimate and the model it names (borrowed from the probed facts, owned when
/// it comes from a Gemini path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Estimate<'a> {
    pub(super) usage: Usage,
    pub(super) model: Option<Cow<'a, str>>,
    /// Whether the request stated its output limit (else the default was assumed).
    pub(super) stated: bool,
}

impl Read {
    /// What a probe of the body says (`None` unless the whole body was read).
    pub(super) fn probe(&self) -> Option<RequestFacts> {
        match self {
            Read::Whole(body) => Some(RequestFacts::probe(body.clone())),
            _ => None,
        }
    }
}

/// The estimate of a request to `api` whose body was `read` and probed into `facts`
/// (`path_model`: a Gemini path's).
pub(super) fn estimate<'a>(
    api: LlmApi,
    read: &Read,
    facts: Option<&'a RequestFacts>,
    path_model: Option<String>,
    prices: &PriceTable,
    default_output: u64,
) -> Estimate<'a> {
    let chars = match read {
        Read::Whole(body) => prompt_chars(body),
        Read::Part(bytes) => *bytes,
        Read::Nothing => 0,
    };
    let input = chars.div_ceil(CHARS_PER_TOKEN);
    let stated = facts.and_then(|f| f.max_output);
    let output = match api {
        LlmApi::OpenAiEmbeddings | LlmApi::Unknown => 0,
        _ => stated.unwrap_or(default_output),
    };
    let model = facts
        .and_then(|f| f.model.as_deref().map(Cow::Borrowed))
        .or(path_model.map(Cow::Owned));
    let tokens = TokenUsage {
        input,
        output,
        ..TokenUsage::default()
    };
    let spend = model
        .as_deref()
        .and_then(|m| prices.cost(m, &tokens))
        .unwrap_or_default();
    Estimate {
        usage: Usage {
            spend,
            tokens: input.saturating_add(output),
            requests: 1,
        },
        model,
        stated: stated.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn stated_limit_and_prompt_priced_exactly() {
        let body = Bytes::from_static(
            br#"{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"12345678"}]}"#,
        );
        let read = Read::Whole(body);
        let facts = read.probe();
        let e = estimate(
            LlmApi::OpenAiChat,
            &read,
            facts.as_ref(),
            None,
            PriceTable::embedded(),
            4096,
        );
        // 8 characters: 2 input tokens; 100 output tokens; gpt-4o $2.50 / $10 per 1M.
        assert_eq!(e.usage.tokens, 102);
        assert_eq!(e.usage.spend, Decimal::new(1005, 6));
        assert!(e.stated);
        assert_eq!(e.model.as_deref(), Some("gpt-4o"));
    }

    #[test]
    fn defaults_and_unknowns() {
        let body = Bytes::from_static(br#"{"model":"no-such-model","messages":[]}"#);
        let read = Read::Whole(body);
        let facts = read.probe();
        let e = estimate(
            LlmApi::OpenAiChat,
            &read,
            facts.as_ref(),
            None,
            PriceTable::embedded(),
            50,
        );
        assert_eq!(
            (e.usage.tokens, e.usage.spend, e.stated),
            (50, Decimal::ZERO, false)
        );
        let e = estimate(
            LlmApi::GeminiGenerate,
            &Read::Part(4001),
            None,
            Some("gemini-2.5-flash".into()),
            PriceTable::embedded(),
            0,
        );
        assert_eq!(e.usage.tokens, 1001);
        assert!(e.usage.spend > Decimal::ZERO);
        let e = estimate(
            LlmApi::Unknown,
            &Read::Nothing,
            None,
            None,
            PriceTable::embedded(),
            50,
        );
        assert_eq!(
            e.usage,
            Usage {
                requests: 1,
                ..Usage::ZERO
            }
        );
    }
}
