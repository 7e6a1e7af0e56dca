//! What a finished exchange is billed: the counts the price table charges for (from the
//! provider's usage and the request's terms), the provider's own statement of its charge, and
//! the record's `service_tier`, `usage_details`, `cost_*` fields made from them.
//!
//! `account.rs` decides *whether* a record is priced (its counts are known); this file decides
//! *how*, so that the accounting stays readable and the pricing rules stay in `pricing`.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::pricing::{PricingTier, SearchContextSize, TokenUsage, parse_exact};
use crate::protocol::{StatedCost, Usage, UsageDetails};
use crate::record::{ActivityRecord, UsageCounts, word};

/// What the request asked for that changes its price.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RequestTerms {
    /// The request's `service_tier` (OpenAI; the response's own value wins).
    pub(crate) service_tier: Option<Cow<'static, str>>,
    /// The web search tool's `search_context_size` (default medium).
    pub(crate) search_context: SearchContextSize,
}

impl RequestTerms {
    /// Reads the terms from a JSON request body with serde (what
    /// [`RequestFacts::probe`](crate::request::RequestFacts::probe) does when its one-pass
    /// reader gives up). Only a body that names one of them is decoded.
    pub(crate) fn read(body: Option<&[u8]>) -> RequestTerms {
        let Some(body) = body else {
            return RequestTerms::default();
        };
        let names = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
        if !names(b"service_tier") && !names(b"search_context_size") {
            return RequestTerms::default();
        }
        let Ok(probe) = serde_json::from_slice::<TermsProbe<'_>>(body) else {
            return RequestTerms::default();
        };
        let size = probe
            .web_search_options
            .and_then(|o| o.search_context_size)
            .or_else(|| {
                probe
                    .tools
                    .into_iter()
                    .filter(|t| {
                        t.kind
                            .as_deref()
                            .is_some_and(|k| k.starts_with("web_search"))
                    })
                    .find_map(|t| t.search_context_size)
            });
        RequestTerms::new(probe.service_tier.as_deref(), size.as_deref())
    }

    /// The terms of a request naming `service_tier` and a web search `search_context_size`.
    pub(crate) fn new(service_tier: Option<&str>, search_context: Option<&str>) -> RequestTerms {
        RequestTerms {
            service_tier: service_tier.map(word),
            search_context: search_context
                .and_then(SearchContextSize::parse)
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct TermsProbe<'a> {
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::null_as_default")]
    tools: Vec<Tool<'a>>,
    #[serde(borrow, default)]
    web_search_options: Option<SearchOptions<'a>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    search_context_size: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SearchOptions<'a> {
    #[serde(borrow, default)]
    search_context_size: Option<Cow<'a, str>>,
}

/// Sets the record's `usage_details` from a reported usage: every count the provider
/// reported beyond the token fields; `None` when there is none.
pub(crate) fn usage_details(r: &mut ActivityRecord, usage: &Usage) {
    // Most responses report none: no need to list the sixteen names to find that out.
    if usage.details == UsageDetails::default() {
        r.usage_details = None;
        return;
    }
    let mut details = UsageCounts::new();
    for (name, n) in usage.details.entries() {
        if let Some(n) = n {
            details.insert(name, n);
        }
    }
    r.usage_details = (!details.is_empty()).then_some(details);
}

/// The counts to price: the record's token fields and the reported usage's parts.
pub(crate) fn token_usage(
    r: &ActivityRecord,
    usage: Option<&Usage>,
    terms: &RequestTerms,
) -> TokenUsage {
    let d = usage.map(|u| u.details).unwrap_or_default();
    let n = |v: Option<u64>| v.unwrap_or(0);
    TokenUsage {
        input: n(r.input_tokens),
        output: n(r.output_tokens),
        cache_read: n(r.cache_read_tokens),
        cache_write: n(r.cache_write_tokens),
        reasoning: n(r.reasoning_tokens),
        cache_write_1h: n(d.cache_write_1h),
        input_audio: n(d.input.audio),
        input_image: n(d.input.image),
        input_video: n(d.input.video),
        cache_read_audio: n(d.cache_read.audio),
        cache_read_image: n(d.cache_read.image),
        cache_read_video: n(d.cache_read.video),
        output_audio: n(d.output.audio),
        output_image: n(d.output.image),
        tool_use_input: n(d.tool_use_prompt),
        web_searches: n(d.web_search_requests),
        search_context: terms.search_context,
        tier: r
            .service_tier
            .as_deref()
            .and_then(PricingTier::from_service_tier),
    }
}

/// The charge a provider stated, exactly: `cost`, plus the upstream provider's bill when the
/// request ran on the user's own key (BYOK: `cost` is then only the router's fee). `None`
/// (with a note) when a figure is not an exact decimal.
pub(crate) fn stated_charge(r: &mut ActivityRecord, stated: &StatedCost) -> Option<Decimal> {
    let cost = parse_exact(&stated.cost);
    let upstream = match (&stated.upstream, stated.byok) {
        (Some(u), true) => parse_exact(u).map(Some),
        _ => Some(None),
    };
    let charge = cost.zip(upstream).and_then(|(c, u)| match u {
        Some(u) => c.checked_add(u),
        None => Some(c),
    });
    if charge.is_none() {
        r.metadata
            .insert("provider_cost".into(), Value::from("unreadable"));
    }
    charge
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;

    #[test]
    fn request_terms_from_each_api_shape() {
        let read = |body: &str| RequestTerms::read(Some(body.as_bytes()));
        assert_eq!(
            read(r#"{"model":"m","messages":[]}"#),
            RequestTerms::default()
        );
        let t = read(
            r#"{"service_tier":"priority","tools":[{"type":"function"},{"type":"web_search","search_context_size":"high"}]}"#,
        );
        assert_eq!(t.service_tier.as_deref(), Some("priority"));
        assert_eq!(t.search_context, SearchContextSize::High);
        let t = read(r#"{"web_search_options":{"search_context_size":"low"},"tools":null}"#);
        assert_eq!(t.search_context, SearchContextSize::Low);
        let t = read(r#"{"tools":[{"type":"web_search_preview","search_context_size":"huge"}]}"#);
        assert_eq!(t.search_context, SearchContextSize::Medium);
        assert_eq!(read("not json service_tier"), RequestTerms::default());
        assert_eq!(RequestTerms::read(None), RequestTerms::default());
    }

    #[test]
    fn usage_details_are_the_reported_counts_and_none_without_one() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.usage_details = Some([("stale", 1)].into_iter().collect());
        usage_details(&mut r, &Usage::default());
        assert_eq!(r.usage_details, None);
        // A count with no `usage_details` name (output video) is none either.
        let mut u = Usage::default();
        u.details.output.video = Some(3);
        r.usage_details = Some(UsageCounts::new());
        usage_details(&mut r, &u);
        assert_eq!(r.usage_details, None);
        u.details.cache_write_1h = Some(0);
        u.details.input.audio = Some(7);
        usage_details(&mut r, &u);
        assert_eq!(
            r.usage_details,
            Some(
                [("cache_write_1h_tokens", 0), ("input_audio_tokens", 7)]
                    .into_iter()
                    .collect()
            )
        );
        // The names are the layer's own: borrowed, never copied.
        assert!(r.usage_details.as_ref().unwrap().borrows_every_key());
    }

    #[test]
    fn a_stated_charge_is_exact_and_byok_adds_the_upstream_bill() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        let stated = |cost: &str, upstream: Option<&str>, byok| StatedCost {
            cost: cost.into(),
            upstream: upstream.map(Into::into),
            byok,
        };
        let charge = |s: StatedCost, r: &mut ActivityRecord| stated_charge(r, &s);
        assert_eq!(
            charge(stated("6.69e-4", Some("0.000669"), false), &mut r),
            Some(Decimal::new(669, 6))
        );
        assert_eq!(
            charge(stated("0.95", Some("19"), true), &mut r),
            Some(Decimal::new(1995, 2))
        );
        assert_eq!(charge(stated("1e-40", None, false), &mut r), None);
        assert_eq!(r.metadata["provider_cost"], "unreadable");
    }
}
