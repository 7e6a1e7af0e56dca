//! The proxy: forwards an LLM request upstream with the gateway's key and streams the answer
//! back frame by frame.
//!
//! One pooled hyper-util client (HTTP/1, keep-alive; TLS by rustls with the Mozilla roots for
//! an `https://` upstream) serves every request. The request goes to
//! `UPSTREAM_URL` + its path + its query (less `session_id` and `key`), with the client's
//! headers less hop-by-hop ones, the client's own credentials (`Authorization`, `x-api-key`,
//! `x-goog-api-key`), `X-Session-Id`, cookies and `Accept-Encoding` (the activity layer reads
//! usage from plain bodies only, so upstream answers uncompressed). The gateway's key is sent
//! the way each API expects: `Authorization: Bearer` (OpenAI chat and Responses), `x-api-key`
//! (Anthropic), `x-goog-api-key` (Gemini).
//!
//! The upstream's answer — status, headers, body — passes through unchanged, errors
//! included; the body is never buffered. An upstream that cannot be reached is a `502` with a
//! JSON error (`type: "upstream_unreachable"`), which the activity layer records as an
//! `error`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::AppState;
use crate::config::UpstreamUrl;
use crate::error::ApiError;
use crate::sessions::SESSION_HEADER;

/// The Gemini actions the gateway forwards (`/v1beta/models/{model}:{action}`).
pub const GEMINI_ACTIONS: [&str; 2] = [":generateContent", ":streamGenerateContent"];

/// The upstream: where requests go, the key they carry, the pooled client.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    url: UpstreamUrl,
    api_key: Option<HeaderValue>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// A client for `url`, sending `api_key` when given. `Err` names `UPSTREAM_API_KEY` when
    /// the key cannot be a header value.
    pub fn new(url: UpstreamUrl, api_key: Option<&str>) -> Result<Self, String> {
        let api_key = api_key
            .map(|k| {
                let mut v = HeaderValue::from_str(k).map_err(|_| {
                    "UPSTREAM_API_KEY contains characters a header cannot carry".to_owned()
                })?;
                v.set_sensitive(true);
                Ok::<_, String>(v)
            })
            .transpose()?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(UpstreamClient {
            client,
            url,
            api_key,
        })
    }

    /// The base URL, for logs and the records' `upstream`.
    pub fn url(&self) -> &UpstreamUrl {
        &self.url
    }
}

/// The LLM routes' handler: forwards the request and streams the answer back.
pub async fn forward(State(state): State<AppState>, request: Request) -> Response {
    let upstream = &state.upstream;
    let (mut parts, body) = request.into_parts();
    let target = match target_uri(&upstream.url, &parts.uri) {
        Ok(uri) => uri,
        Err(e) => return e.into_response(),
    };
    strip_hop_by_hop(&mut parts.headers);
    for name in [
        header::HOST,
        header::AUTHORIZATION,
        header::COOKIE,
        header::ACCEPT_ENCODING,
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static("x-goog-api-key"),
        HeaderName::from_static(SESSION_HEADER),
    ] {
        parts.headers.remove(name);
    }
    if let Some(key) = &upstream.api_key {
        let path = parts.uri.path();
        let (name, value) = if path.starts_with("/v1beta/") {
            (HeaderName::from_static("x-goog-api-key"), key.clone())
        } else if path == "/v1/messages" {
            (HeaderName::from_static("x-api-key"), key.clone())
        } else {
            let mut bearer = HeaderValue::from_bytes(&[b"Bearer ", key.as_bytes()].concat())
                .unwrap_or_else(|_| key.clone());
            bearer.set_sensitive(true);
            (header::AUTHORIZATION, bearer)
        };
        parts.headers.insert(name, value);
    }
    parts.uri = target;
    let upstream_name = tower_activity::Upstream(upstream.url.to_string());
    let mut response = match upstream
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            let cause = causes(&e);
            tracing::warn!(upstream = %upstream.url, "upstream request failed: {cause}");
            let message = if e.is_connect() {
                format!("upstream {} is unreachable: {cause}", upstream.url)
            } else {
                format!("upstream {} failed before answering: {cause}", upstream.url)
            };
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unreachable", message).into_response()
        }
    };
    response.extensions_mut().insert(upstream_name);
    response
}

/// Middleware outside the activity layer: a Gemini path with an action the gateway does not
/// forward is a 404 that is not recorded.
pub async fn known_action(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/v1beta/models/") && !GEMINI_ACTIONS.iter().any(|a| path.ends_with(a)) {
        return ApiError::not_found(format!(
            "no route for POST {path}; Gemini models serve `:generateContent` and `:streamGenerateContent`"
        ))
        .into_response();
    }
    next.run(request).await
}

/// The upstream URI for a request: base + path + query without `session_id` and `key`.
fn target_uri(base: &UpstreamUrl, uri: &Uri) -> Result<Uri, ApiError> {
    let query: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !p.is_empty() && name != "session_id" && name != "key"
        })
        .collect();
    let mut target = format!("{}{}{}", base.origin, base.prefix, uri.path());
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query.join("&"));
    }
    target
        .parse()
        .map_err(|e| ApiError::bad_request(format!("cannot forward this path: {e}")))
}

/// Removes the headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
    ] {
        headers.remove(name);
    }
}

/// An error and its sources, `: `-separated (hyper's own message is only "client error").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_keeps_the_prefix_and_drops_gateway_parameters() {
        let base = UpstreamUrl::parse("http://127.0.0.1:9/p").unwrap();
        let uri: Uri = "/v1beta/models/m:streamGenerateContent?alt=sse&session_id=s&key=k"
            .parse()
            .unwrap();
        assert_eq!(
            target_uri(&base, &uri).unwrap().to_string(),
            "http://127.0.0.1:9/p/v1beta/models/m:streamGenerateContent?alt=sse"
        );
        let uri: Uri = "/v1/responses?session_id=s".parse().unwrap();
        assert_eq!(
            target_uri(&base, &uri).unwrap().to_string(),
            "http://127.0.0.1:9/p/v1/responses"
        );
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, x-trace".parse().unwrap());
        h.insert("x-trace", "1".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
