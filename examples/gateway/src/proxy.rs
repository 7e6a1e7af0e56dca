//! The proxy: forwards an LLM request to the upstream [`routing`](crate::routing) chose, with
//! that upstream's key, and streams the answer back frame by frame.
//!
//! One pooled hyper-util client (HTTP/1, keep-alive; TLS by rustls with the Mozilla roots for
//! an `https://` upstream) serves every upstream. The request goes to the upstream's base URL +
//! its path + its query (less `session_id` and `key`, compared after percent-decoding), with
//! only the headers [`headers`] allows, and the upstream's key sent the way
//! each API expects: `Authorization: Bearer` (OpenAI chat, Responses, embeddings), `x-api-key`
//! and `anthropic-version` (Anthropic; `2023-06-01` unless the client names one),
//! `x-goog-api-key` (Gemini). A base URL's `user:password` goes as `Authorization: Basic`
//! when the key does not use that header.
//!
//! The upstream's answer — status, the allowed headers, body — passes through unchanged,
//! errors included; the body is never buffered. Bounds ([`Limits`]): the connection must be
//! made within `upstream_connect`, the response headers arrive within `upstream_headers`
//! (else `504 upstream_timeout`), and a response body silent for `upstream_idle` is ended
//! (the activity layer records the stream `interrupted`). An upstream that cannot be reached
//! is a `502` (`type: "upstream_unreachable"`), recorded as an `error`. Messages and records
//! name the upstream by its name; its URL appears in messages without userinfo.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::Either;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_activity::{ActivityRequestBody, LlmApi};

use crate::AppState;
use crate::config::UpstreamUrl;
use crate::error::{ApiError, api_error};
use crate::headers;
use crate::limits::{BodyTimeout, Limits, TimedBody};
use crate::pools::{PerThreadClient, Sent};
use crate::routing::{Chosen, Routes, Upstream};

/// The Gemini actions the gateway forwards (`/v1beta/models/{model}:{action}`).
pub const GEMINI_ACTIONS: [&str; 2] = [":generateContent", ":streamGenerateContent"];

/// The `anthropic-version` sent when the client names none (the API requires one).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The upstreams, their routes and the pooled client that reaches them (a pool per thread:
/// [`PerThreadClient`]).
#[derive(Clone)]
pub struct UpstreamClient {
    client: PerThreadClient,
    routes: Routes,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// A client for `routes` with the upstream bounds of `limits`.
    pub fn new(routes: Routes, limits: &Limits) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(limits.upstream_connect));
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = PerThreadClient::new(connector, Duration::from_secs(60));
        UpstreamClient {
            client,
            routes,
            header_timeout: limits.upstream_headers,
            idle_timeout: limits.upstream_idle,
        }
    }

    /// The routes: every upstream, in order.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// `name (url)` for each upstream, for the log (never a credential).
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .routes
            .upstreams()
            .iter()
            .map(|u| format!("{} ({})", u.config.name, u.config.url))
            .collect();
        names.join(", ")
    }
}

/// A request body [`Forward`] can send upstream without boxing it (see [`Sent`]).
pub trait IntoSent: Send + 'static {
    /// The body as the upstream client sends it.
    fn into_sent(self) -> Sent;
}

impl IntoSent for Body {
    fn into_sent(self) -> Sent {
        Either::Left(ActivityRequestBody::passthrough(self))
    }
}

impl IntoSent for ActivityRequestBody<Body> {
    fn into_sent(self) -> Sent {
        Either::Left(self)
    }
}

impl IntoSent for ActivityRequestBody<ActivityRequestBody<Body>> {
    fn into_sent(self) -> Sent {
        Either::Right(self)
    }
}

/// [`forward`] as a tower service, for the router's body or the activity layer's (on the LLM
/// routes): the innermost service of their stack, so that no boxed axum handler sits under it
/// (see [`router`](crate::router)).
#[derive(Clone)]
pub struct Forward {
    state: AppState,
}

impl Forward {
    /// Forwards with `state`'s upstreams.
    pub fn new(state: AppState) -> Self {
        Forward { state }
    }
}

impl<B: IntoSent> tower::Service<http::Request<B>> for Forward {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = forward(State(self.state.clone()), request.map(IntoSent::into_sent));
        Box::pin(async move { Ok(future.await) })
    }
}

/// The LLM routes' handler: forwards the request and streams the answer back.
pub async fn forward(State(state): State<AppState>, request: Request<Sent>) -> Response {
    let client = &state.upstream;
    let api = LlmApi::detect(request.uri().path());
    let chosen: Arc<Upstream> = match request.extensions().get::<Chosen>() {
        Some(Chosen(upstream)) => upstream.clone(),
        None => match client.routes.pick(api, None) {
            Some(upstream) => upstream.clone(),
            None => {
                return api_error(
                    api,
                    StatusCode::NOT_FOUND,
                    "model_not_found",
                    format!("no upstream of this gateway serves {}", api.as_str()),
                );
            }
        },
    };
    let upstream = &chosen.config;
    let (mut parts, body) = request.into_parts();
    let target = match target_uri(&upstream.url, &parts.uri) {
        Ok(uri) => uri,
        Err(e) => return e.into_response(),
    };
    let mut sent = headers::upstream_request(&parts.headers, api, &upstream.forward_headers);
    if let Some(key) = &chosen.key {
        let (name, value) = match api {
            LlmApi::GeminiGenerate => (HeaderName::from_static("x-goog-api-key"), key.clone()),
            LlmApi::AnthropicMessages => (HeaderName::from_static("x-api-key"), key.clone()),
            _ => {
                let mut bearer = HeaderValue::from_bytes(&[b"Bearer ", key.as_bytes()].concat())
                    .unwrap_or_else(|_| key.clone());
                bearer.set_sensitive(true);
                (header::AUTHORIZATION, bearer)
            }
        };
        sent.insert(name, value);
    }
    if let Some(basic) = upstream.url.basic_auth() {
        if !sent.contains_key(header::AUTHORIZATION) {
            sent.insert(header::AUTHORIZATION, basic.clone());
        }
    }
    if api == LlmApi::AnthropicMessages && !sent.contains_key("anthropic-version") {
        sent.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    parts.headers = sent;
    parts.uri = target;
    let upstream_name = tower_activity::Upstream(upstream.name.clone());
    let call = client.client.request(Request::from_parts(parts, body));
    let mut response = match tokio::time::timeout(client.header_timeout, call).await {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            headers::filter_response(&mut parts.headers, upstream.rate_limit_headers);
            let body = TimedBody::new(body, client.idle_timeout, None);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(e)) if crate::limits::find_cause::<BodyTimeout>(&e).is_some() => {
            // The client's body, not the upstream, was too slow.
            crate::limits::body_error(api, &e, 0)
        }
        Ok(Err(e)) => {
            let cause = causes(&e);
            let name = &upstream.name;
            tracing::warn!(upstream = %name, "upstream request failed: {cause}");
            let message = if e.is_connect() {
                format!("upstream {name} ({}) is unreachable: {cause}", upstream.url)
            } else {
                format!(
                    "upstream {name} ({}) failed before answering: {cause}",
                    upstream.url
                )
            };
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unreachable", message).into_response()
        }
        Err(_) => {
            let name = &upstream.name;
            tracing::warn!(upstream = %name, "upstream sent no response headers within {:?}", client.header_timeout);
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "upstream {name} sent no response headers within {:?}",
                    client.header_timeout
                ),
            )
            .into_response()
        }
    };
    response.extensions_mut().insert(upstream_name);
    response
}

/// Outside the activity layer: a Gemini path with an action the gateway does not forward is
/// a 404 that is not recorded.
pub fn known_action(path: &str) -> Result<(), ApiError> {
    if path.starts_with("/v1beta/models/") && !GEMINI_ACTIONS.iter().any(|a| path.ends_with(a)) {
        return Err(ApiError::not_found(format!(
            "no route for POST {path}; Gemini models serve `:generateContent` and `:streamGenerateContent`"
        )));
    }
    Ok(())
}

/// Query parameters the gateway reads and never forwards: the session, and Gemini's `key`
/// (a client's key in the URL).
pub const GATEWAY_PARAMETERS: [&str; 2] = ["session_id", "key"];

/// The upstream URI for a request: base + path + query without [`GATEWAY_PARAMETERS`], whose
/// names are compared percent-decoded (`ke%79` is `key`).
fn target_uri(base: &UpstreamUrl, uri: &Uri) -> Result<Uri, ApiError> {
    let query: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let name = form_urlencoded::parse(p.as_bytes())
                .next()
                .map(|(name, _)| name);
            !p.is_empty() && !name.is_some_and(|n| GATEWAY_PARAMETERS.contains(&n.trim()))
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
        let uri: Uri = "/v1/responses?%73ession_id=s&ke%79=k&k%65y=k&key+=k&alt=sse"
            .parse()
            .unwrap();
        assert_eq!(
            target_uri(&base, &uri).unwrap().to_string(),
            "http://127.0.0.1:9/p/v1/responses?alt=sse",
            "names compared decoded"
        );
        let uri: Uri = "/v1/responses?session_id=s".parse().unwrap();
        assert_eq!(
            target_uri(&base, &uri).unwrap().to_string(),
            "http://127.0.0.1:9/p/v1/responses"
        );
    }
}
