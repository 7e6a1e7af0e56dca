//! Usage as the wire formats report it: the token counts of the record, the extra counts that
//! price them (modalities, cache lifetimes, server-side tools), and a provider's own statement
//! of its charge.

use std::borrow::Cow;

use serde::Deserialize;

/// Token counts as a wire format reports them, already normalised to the record's semantics
/// (`input` includes cache reads and writes, `output` includes reasoning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) input: Option<u64>,
    pub(crate) output: Option<u64>,
    pub(crate) cache_read: Option<u64>,
    pub(crate) cache_write: Option<u64>,
    pub(crate) reasoning: Option<u64>,
    /// The counts beyond the record's token fields.
    pub(crate) details: UsageDetails,
}

/// Counts beyond the record's token fields, each `None` unless the provider reported it. Every
/// one is a part of a record total (see [`UsageDetails::entries`]) except `tool_use_prompt`
/// and the tool call counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UsageDetails {
    /// The prompt by modality (cached or not).
    pub(crate) input: Modalities,
    /// The cache reads by modality.
    pub(crate) cache_read: Modalities,
    /// The output by modality (reasoning excluded where the provider counts it apart).
    pub(crate) output: Modalities,
    /// Cache writes for 5 minutes (Anthropic `ephemeral_5m_input_tokens`).
    pub(crate) cache_write_5m: Option<u64>,
    /// Cache writes for 1 hour (Anthropic `ephemeral_1h_input_tokens`).
    pub(crate) cache_write_1h: Option<u64>,
    /// Server-side web searches.
    pub(crate) web_search_requests: Option<u64>,
    /// Server-side web fetches (Anthropic; no price of their own).
    pub(crate) web_fetch_requests: Option<u64>,
    /// Prompt tokens of server-side tool results, outside the prompt count (Gemini).
    pub(crate) tool_use_prompt: Option<u64>,
}

/// Token counts of one direction by modality.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Modalities {
    pub(crate) text: Option<u64>,
    pub(crate) audio: Option<u64>,
    pub(crate) image: Option<u64>,
    pub(crate) video: Option<u64>,
}

impl Modalities {
    /// Gemini's `[{"modality": "AUDIO", "tokenCount": 12}, …]`: counts summed per modality
    /// (`DOCUMENT` and unknown modalities count as text); `None` without a list.
    pub(crate) fn from_gemini(list: Option<&[ModalityCount<'_>]>) -> Modalities {
        let mut m = Modalities::default();
        for item in list.unwrap_or_default() {
            let slot = match item.modality.as_deref().unwrap_or("") {
                "AUDIO" => &mut m.audio,
                "IMAGE" => &mut m.image,
                "VIDEO" => &mut m.video,
                _ => &mut m.text,
            };
            *slot = Some(
                slot.unwrap_or(0)
                    .saturating_add(item.token_count.unwrap_or(0)),
            );
        }
        m
    }
}

/// One entry of a Gemini `*TokensDetails` list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModalityCount<'a> {
    #[serde(borrow, default)]
    pub(crate) modality: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) token_count: Option<u64>,
}

impl UsageDetails {
    /// The counts by their `usage_details` names (the record's), `None` when not reported.
    pub(crate) fn entries(&self) -> [(&'static str, Option<u64>); 16] {
        let (i, c, o) = (self.input, self.cache_read, self.output);
        [
            ("input_text_tokens", i.text),
            ("input_audio_tokens", i.audio),
            ("input_image_tokens", i.image),
            ("input_video_tokens", i.video),
            ("cache_read_text_tokens", c.text),
            ("cache_read_audio_tokens", c.audio),
            ("cache_read_image_tokens", c.image),
            ("cache_read_video_tokens", c.video),
            ("output_text_tokens", o.text),
            ("output_audio_tokens", o.audio),
            ("output_image_tokens", o.image),
            ("cache_write_5m_tokens", self.cache_write_5m),
            ("cache_write_1h_tokens", self.cache_write_1h),
            ("web_search_requests", self.web_search_requests),
            ("web_fetch_requests", self.web_fetch_requests),
            ("tool_use_prompt_tokens", self.tool_use_prompt),
        ]
    }
}

/// A provider's statement of what it charged (OpenRouter's `usage.cost`), each figure as the
/// literal JSON text it was sent as, so that it is parsed exactly later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatedCost {
    /// `usage.cost`: what the account was charged.
    pub(crate) cost: String,
    /// `usage.cost_details.upstream_inference_cost`, when a number.
    pub(crate) upstream: Option<String>,
    /// `usage.is_byok`: the request ran on the user's own provider key, so `cost` is only the
    /// router's fee and the provider billed `upstream` on top.
    pub(crate) byok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_modalities_are_summed_and_unknown_ones_are_text() {
        let list: Vec<ModalityCount<'_>> = serde_json::from_str(
            r#"[{"modality":"TEXT","tokenCount":3},{"modality":"AUDIO","tokenCount":5},
                {"modality":"DOCUMENT","tokenCount":4},{"modality":"IMAGE"},{"tokenCount":1}]"#,
        )
        .unwrap();
        let m = Modalities::from_gemini(Some(&list));
        assert_eq!(
            (m.text, m.audio, m.image, m.video),
            (Some(8), Some(5), Some(0), None)
        );
        assert_eq!(Modalities::from_gemini(None), Modalities::default());
    }
}
