//! Which headers cross the gateway, in each direction: allow-lists, not deny-lists.
//!
//! **Upstream** go only [`REQUEST_HEADERS`] (the message's own: its type, length and what it
//! accepts, and the W3C trace context), the API's own headers ([`api_headers`]:
//! `anthropic-version`, `anthropic-beta`), the headers the upstream's `forward_headers` allows,
//! and the gateway's credential for that upstream. Everything else a client sends stays at the
//! gateway: its own credentials, cookies, `OpenAI-Organization` / `OpenAI-Project` (a client
//! would otherwise pick whose bill a request lands on), `Accept-Encoding` (the layer reads
//! plain bodies), proxies' `X-Forwarded-*`, anything unknown.
//!
//! **Back** come only [`RESPONSE_HEADERS`] (content type, length and encoding, `retry-after`,
//! the providers' request ids), and — when the upstream's `rate_limit_headers` is on — the
//! providers' rate-limit headers ([`is_rate_limit`]). The gateway's account details
//! (`openai-organization`, `openai-project`), cookies, server banners and anything else stay
//! upstream of it.

use axum::http::{HeaderMap, HeaderName};
use tower_activity::LlmApi;

/// Request headers any API's request carries upstream.
pub const REQUEST_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "accept",
    "traceparent",
    "tracestate",
];

/// Response headers that always come back to the client.
pub const RESPONSE_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "content-encoding",
    "retry-after",
    // OpenAI, OpenRouter, most OpenAI-compatible providers.
    "x-request-id",
    // Anthropic.
    "request-id",
    // Gemini (Google front ends).
    "x-goog-request-id",
];

/// Headers that carry credentials or describe a connection: never allowed by
/// `forward_headers` (a configuration naming one is refused).
pub const NEVER_FORWARDED: [&str; 14] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-session-id",
    "accept-encoding",
];

/// The headers `api`'s requests carry beyond [`REQUEST_HEADERS`].
pub fn api_headers(api: LlmApi) -> &'static [&'static str] {
    match api {
        LlmApi::AnthropicMessages => &["anthropic-version", "anthropic-beta"],
        _ => &[],
    }
}

/// The headers of a client's request that may go upstream: [`REQUEST_HEADERS`],
/// [`api_headers`] and `forward` (the upstream's `forward_headers`), every value of each.
pub fn upstream_request(client: &HeaderMap, api: LlmApi, forward: &[HeaderName]) -> HeaderMap {
    let mut out = HeaderMap::new();
    let names = REQUEST_HEADERS
        .iter()
        .chain(api_headers(api))
        .map(|n| HeaderName::from_static(n))
        .chain(forward.iter().cloned());
    for name in names {
        for value in client.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Whether `name` is a provider's rate-limit header (`x-ratelimit-*` from OpenAI and
/// OpenAI-compatible providers, `anthropic-ratelimit-*`).
pub fn is_rate_limit(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-")
}

/// Keeps only the upstream response headers a client may see (see the module docs).
pub fn filter_response(headers: &mut HeaderMap, rate_limits: bool) {
    let drop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            !(RESPONSE_HEADERS.contains(&name.as_str()) || rate_limits && is_rate_limit(name))
        })
        .cloned()
        .collect();
    for name in drop {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_allowed_request_headers_go_upstream() {
        let client = headers(&[
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "a"),
            ("anthropic-beta", "b"),
            ("openai-organization", "org-victim"),
            ("openai-beta", "assistants=v2"),
            ("authorization", "Bearer client"),
            ("cookie", "c=1"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        let out = upstream_request(&client, LlmApi::AnthropicMessages, &[]);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["content-type", "anthropic-version", "anthropic-beta"]
        );
        assert_eq!(out.get_all("anthropic-beta").iter().count(), 2);
        let out = upstream_request(
            &client,
            LlmApi::OpenAiChat,
            &[HeaderName::from_static("openai-beta")],
        );
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "openai-beta"]);
    }

    #[test]
    fn only_documented_response_headers_come_back() {
        let upstream = headers(&[
            ("content-type", "text/event-stream"),
            ("x-request-id", "req_1"),
            ("request-id", "req_2"),
            ("x-ratelimit-remaining-tokens", "10"),
            ("anthropic-ratelimit-requests-remaining", "5"),
            ("openai-organization", "org-gateway"),
            ("set-cookie", "a=1"),
            ("server", "cloudflare"),
        ]);
        let mut h = upstream.clone();
        filter_response(&mut h, false);
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "request-id", "x-request-id"]);
        let mut h = upstream;
        filter_response(&mut h, true);
        assert_eq!(h.len(), 5);
        assert!(h.contains_key("x-ratelimit-remaining-tokens"));
        assert!(h.contains_key("anthropic-ratelimit-requests-remaining"));
    }
}
