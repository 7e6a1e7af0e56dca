//! The billing cases of issue 11: one fixture per billable dimension and wire format, with the
//! cost worked out by hand from LiteLLM 1.110.2's prices (the arithmetic is in each fixture's
//! `.source.txt`), and the cost the layer recorded before it priced that dimension. Shared by
//! the layer's fixture tests, the `replay` tests and the gateway's.

use rust_decimal::Decimal;
use tower_activity::{ActivityRecord, CostDetails, CostSource};

/// One fixture and what its record must say.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The file in `tests/fixtures/`.
    pub fixture: &'static str,
    /// The request path.
    pub path: &'static str,
    /// The request body (`{}` when `None`).
    pub request: Option<&'static str>,
    /// What the issue calls the dimension.
    pub dimension: &'static str,
    /// `cost_usd`.
    pub cost: &'static str,
    /// The cost before this dimension was priced (for the report; not asserted).
    pub before: &'static str,
    /// `cost_source` is `reported` (else `computed`).
    pub reported: bool,
    /// `service_tier`.
    pub service_tier: Option<&'static str>,
    /// Every part of `cost_details` (for a reported cost: the table's parts and `computed`).
    pub parts: &'static [(&'static str, &'static str)],
    /// Entries `usage_details` must have (others may be there too).
    pub usage: &'static [(&'static str, u64)],
}

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";
const GEMINI: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
const WEB_SEARCH_REQUEST: &str = r#"{"model":"gpt-5","tools":[{"type":"web_search","search_context_size":"low"}],"input":"What is the weather in Paris?"}"#;

const PRIORITY: &[(&str, &str)] = &[
    ("input", "0.0025"),
    ("cache_read", "0.00005"),
    ("output", "0.00576"),
    ("reasoning", "0.01024"),
];
const AUDIO: &[(&str, &str)] = &[
    ("input", "0.0001"),
    ("input_audio", "0.0024"),
    ("output", "0.0005"),
    ("output_audio", "0.012"),
];
const AUDIO_USAGE: &[(&str, u64)] = &[
    ("input_text_tokens", 40),
    ("input_audio_tokens", 60),
    ("output_text_tokens", 50),
    ("output_audio_tokens", 150),
];
const LONG: &[(&str, &str)] = &[("input", "1"), ("cache_read", "0.05"), ("output", "0.045")];
const SEARCH: &[(&str, &str)] = &[
    ("input", "0.003125"),
    ("output", "0.00172"),
    ("reasoning", "0.00128"),
    ("web_search", "0.02"),
];
const CACHE_1H: &[(&str, &str)] = &[
    ("input", "0.000009"),
    ("cache_read", "0.0003"),
    ("cache_write_5m", "0.001875"),
    ("cache_write_1h", "0.009"),
    ("output", "0.0015"),
];
const CACHE_1H_USAGE: &[(&str, u64)] = &[
    ("cache_write_5m_tokens", 500),
    ("cache_write_1h_tokens", 1500),
];
const A_SEARCH: &[(&str, &str)] = &[
    ("input", "0.0045"),
    ("output", "0.0015"),
    ("web_search", "0.03"),
];
const G_AUDIO: &[(&str, &str)] = &[
    ("input", "0.00006"),
    ("input_audio", "0.0008"),
    ("output", "0.000125"),
    ("reasoning", "0.00025"),
];
const G_AUDIO_USAGE: &[(&str, u64)] = &[
    ("input_text_tokens", 200),
    ("input_audio_tokens", 800),
    ("output_text_tokens", 50),
];

/// Every case.
pub fn cases() -> Vec<Case> {
    let case = |fixture, path, dimension, cost, before, parts| Case {
        fixture,
        path,
        request: None,
        dimension,
        cost,
        before,
        reported: false,
        service_tier: None,
        parts,
        usage: &[],
    };
    vec![
        Case {
            service_tier: Some("priority"),
            ..case(
                "openai-chat_priority.json",
                CHAT,
                "priority tier",
                "0.01855",
                "0.009275",
                PRIORITY,
            )
        },
        Case {
            service_tier: Some("priority"),
            ..case(
                "openai-chat_stream_priority.sse",
                CHAT,
                "priority tier",
                "0.01855",
                "0.009275",
                PRIORITY,
            )
        },
        Case {
            service_tier: Some("flex"),
            ..case(
                "openai-responses_flex.json",
                RESPONSES,
                "flex tier",
                "0.0046375",
                "0.009275",
                &[
                    ("input", "0.000625"),
                    ("cache_read", "0.0000125"),
                    ("output", "0.00144"),
                    ("reasoning", "0.00256"),
                ],
            )
        },
        Case {
            service_tier: Some("flex"),
            ..case(
                "openai-responses_stream_reasoning.sse",
                RESPONSES,
                "flex tier",
                "0.002378125",
                "0.00475625",
                &[
                    ("input", "0.000033125"),
                    ("output", "0.000105"),
                    ("reasoning", "0.00224"),
                ],
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: CACHE_1H_USAGE,
            ..case(
                "anthropic_cache-1h.json",
                MESSAGES,
                "1-hour cache writes",
                "0.012684",
                "0.009309",
                CACHE_1H,
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: CACHE_1H_USAGE,
            ..case(
                "anthropic_stream_cache-1h.sse",
                MESSAGES,
                "1-hour cache writes",
                "0.012684",
                "0.009309",
                CACHE_1H,
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: &[("web_search_requests", 3), ("web_fetch_requests", 1)],
            ..case(
                "anthropic_web-search.json",
                MESSAGES,
                "server-side web search",
                "0.036",
                "0.006",
                A_SEARCH,
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: &[("web_search_requests", 3), ("web_fetch_requests", 0)],
            ..case(
                "anthropic_stream_web-search.sse",
                MESSAGES,
                "server-side web search",
                "0.036",
                "0.006",
                A_SEARCH,
            )
        },
        Case {
            request: Some(WEB_SEARCH_REQUEST),
            service_tier: Some("default"),
            usage: &[("web_search_requests", 2)],
            ..case(
                "openai-responses_web-search.json",
                RESPONSES,
                "server-side web search",
                "0.026125",
                "0.006125",
                SEARCH,
            )
        },
        Case {
            request: Some(WEB_SEARCH_REQUEST),
            service_tier: Some("default"),
            usage: &[("web_search_requests", 2)],
            ..case(
                "openai-responses_stream_web-search.sse",
                RESPONSES,
                "server-side web search",
                "0.026125",
                "0.006125",
                SEARCH,
            )
        },
        Case {
            service_tier: Some("default"),
            usage: AUDIO_USAGE,
            ..case(
                "openai-chat_audio.json",
                CHAT,
                "audio tokens",
                "0.015",
                "0.00225",
                AUDIO,
            )
        },
        Case {
            service_tier: Some("default"),
            usage: AUDIO_USAGE,
            ..case(
                "openai-chat_stream_audio.sse",
                CHAT,
                "audio tokens",
                "0.015",
                "0.00225",
                AUDIO,
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: G_AUDIO_USAGE,
            ..case(
                "gemini_audio.json",
                GEMINI,
                "audio tokens",
                "0.001235",
                "0.000675",
                G_AUDIO,
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: G_AUDIO_USAGE,
            ..case(
                "gemini_stream_audio.sse",
                GEMINI_STREAM,
                "audio tokens",
                "0.001235",
                "0.000675",
                G_AUDIO,
            )
        },
        Case {
            service_tier: Some("standard"),
            usage: &[
                ("input_audio_tokens", 1917),
                ("input_video_tokens", 15780),
                ("cache_read_audio_tokens", 1881),
                ("cache_read_video_tokens", 15483),
            ],
            ..case(
                "gemini.json",
                GEMINI,
                "audio tokens (cached)",
                "0.00300094",
                "0.00284407",
                &[
                    ("input", "0.0000003"),
                    ("input_audio", "0.000036"),
                    ("input_video", "0.0000891"),
                    ("cache_read", "0.00046494"),
                    ("cache_read_audio", "0.0001881"),
                    ("output", "0.00017"),
                    ("reasoning", "0.0020525"),
                ],
            )
        },
        Case {
            service_tier: Some("default"),
            ..case(
                "openai-responses_long-context.json",
                RESPONSES,
                "long-context tier",
                "1.095",
                "0.555",
                LONG,
            )
        },
        Case {
            service_tier: Some("default"),
            ..case(
                "openai-responses_stream_long-context.sse",
                RESPONSES,
                "long-context tier",
                "1.095",
                "0.555",
                LONG,
            )
        },
        Case {
            reported: true,
            ..case(
                "openrouter_stream_usage-cost.sse",
                CHAT,
                "stated cost",
                "0.000669",
                "0.000669",
                &[
                    ("input", "0.000129"),
                    ("output", "0.000345"),
                    ("reasoning", "0.000195"),
                    ("computed", "0.000669"),
                ],
            )
        },
        Case {
            reported: true,
            ..case(
                "openrouter_byok.json",
                CHAT,
                "stated cost (BYOK)",
                "0.00070245",
                "0.000669",
                &[
                    ("input", "0.000129"),
                    ("output", "0.00054"),
                    ("computed", "0.000669"),
                ],
            )
        },
    ]
}

/// Whether `fixture` is an SSE body.
pub fn is_sse(fixture: &str) -> bool {
    fixture.ends_with(".sse")
}

/// The fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks a record of `case` (from the layer, `replay` or the gateway's log API); `how` names
/// the run in messages.
pub fn check(case: &Case, r: &ActivityRecord, how: &str) {
    let at = format!("{} ({how})", case.fixture);
    let cost: Decimal = case.cost.parse().unwrap();
    assert_eq!(r.cost_usd, Some(cost), "{at}: cost_usd");
    let source = if case.reported {
        CostSource::Reported
    } else {
        CostSource::Computed
    };
    assert_eq!(r.cost_source, Some(source), "{at}: cost_source");
    assert_eq!(
        r.service_tier.as_deref(),
        case.service_tier,
        "{at}: service_tier"
    );
    let want: CostDetails = case
        .parts
        .iter()
        .map(|(k, v)| (*k, v.parse::<Decimal>().unwrap()))
        .collect();
    assert_eq!(r.cost_details.as_ref(), Some(&want), "{at}: cost_details");
    let parts: Decimal = want
        .iter()
        .filter(|(k, _)| *k != "computed")
        .map(|(_, v)| *v)
        .sum();
    if case.reported {
        assert_eq!(
            want.get("computed"),
            Some(&parts),
            "{at}: computed = its parts"
        );
    } else {
        assert_eq!(parts, cost, "{at}: the parts add up to the cost");
    }
    for (name, n) in case.usage {
        let got = r.usage_details.as_ref().and_then(|d| d.get(name));
        assert_eq!(got, Some(n), "{at}: usage_details.{name}");
    }
}
