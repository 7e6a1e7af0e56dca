//! Which upstream serves a request: [`Routes`], and [`route`], the middleware that picks one.
//!
//! Upstreams are tried in their configured order; the first whose `apis` include the
//! request's API and whose `models` globs match its model serves it. The API comes from the
//! path ([`LlmApi::detect`]); the model from the Gemini path, or from the body's top-level
//! `model` for the other APIs — the body is read (up to [`Limits::max_routed_body`]) only when
//! the choice depends on the model. A body without a readable `model` goes to the first
//! upstream serving its API whatever its models (the provider's own answer then explains what
//! is wrong with it). A request no upstream serves is a `404` in the API's own error shape,
//! naming the model; it is not sent anywhere and not recorded.
//!
//! [`Limits::max_routed_body`]: crate::limits::Limits::max_routed_body

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use tower_activity::LlmApi;

use crate::AppState;
use crate::config::UpstreamConfig;
use crate::error::api_error;

/// One upstream, ready to serve: its configuration and its key as a header value.
#[derive(Debug)]
pub struct Upstream {
    /// Name, URL, APIs, model globs, header rules.
    pub config: UpstreamConfig,
    /// The key sent as its APIs expect; sensitive (`Debug` does not show it).
    pub(crate) key: Option<HeaderValue>,
}

impl Upstream {
    /// Whether it serves `api` for `model` (`None`: the model could not be read).
    pub fn serves(&self, api: LlmApi, model: Option<&str>) -> bool {
        let c = &self.config;
        c.apis.contains(&api)
            && match model {
                _ if c.models.is_empty() => true,
                Some(model) => c.models.iter().any(|g| glob(g, model)),
                None => false,
            }
    }
}

/// Every upstream, in order.
#[derive(Debug, Clone)]
pub struct Routes(Arc<[Arc<Upstream>]>);

/// The upstream chosen for a request, in its extensions (for [`proxy::forward`](crate::proxy::forward)).
#[derive(Debug, Clone)]
pub struct Chosen(pub Arc<Upstream>);

impl Routes {
    /// The routes over `upstreams`, tried in this order.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Routes(upstreams.into_iter().map(Arc::new).collect())
    }

    /// Every upstream, in order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.0
    }

    /// The first upstream serving `api` for `model`; with `model` unknown, the first serving
    /// `api` at all.
    pub fn pick(&self, api: LlmApi, model: Option<&str>) -> Option<&Arc<Upstream>> {
        match model {
            Some(_) => self.0.iter().find(|u| u.serves(api, model)),
            None => self.0.iter().find(|u| u.config.apis.contains(&api)),
        }
    }

    /// Whether picking for `api` depends on the model: an upstream with model globs comes
    /// before the first one serving every model (or no upstream serves `api` at all, and the
    /// 404 names the model).
    fn needs_model(&self, api: LlmApi) -> bool {
        match self.0.iter().find(|u| u.config.apis.contains(&api)) {
            None => true,
            Some(first) => !first.config.models.is_empty(),
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (empty
/// included) and every other character itself. Hand-written: the only wildcard model globs
/// need, where `globset` would bring a regex engine.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// The top-level `model` of a JSON body.
#[derive(Deserialize)]
struct ModelOnly<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
}

/// On the LLM routes (after authentication, before the activity layer): picks the upstream
/// ([`Chosen`] in the extensions of the request returned) or answers `404`.
pub async fn route(state: &AppState, request: Request) -> Result<Request, Response> {
    let api = LlmApi::detect(request.uri().path());
    let routes = state.upstream.routes();
    let path_model = (api == LlmApi::GeminiGenerate)
        .then(|| gemini_model(request.uri().path()))
        .flatten();
    let (request, model) = if path_model.is_some() || !routes.needs_model(api) {
        (request, path_model)
    } else {
        let (parts, body) = request.into_parts();
        let limit = state.limits.max_routed_body;
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Err(crate::limits::body_error(api, &*e, limit)),
        };
        let model = serde_json::from_slice::<ModelOnly>(&bytes)
            .ok()
            .and_then(|m| m.model)
            .map(|m| m.into_owned());
        (Request::from_parts(parts, Body::from(bytes)), model)
    };
    let Some(upstream) = routes.pick(api, model.as_deref()).cloned() else {
        let shown = match &model {
            Some(m) => format!("{:?}", m.chars().take(256).collect::<String>()),
            None => "(none given)".to_owned(),
        };
        return Err(api_error(
            api,
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "no upstream of this gateway serves model {shown} on {}; the configured models are listed in GATEWAY_CONFIG",
                api.as_str()
            ),
        ));
    };
    let mut request = request;
    request.extensions_mut().insert(Chosen(upstream));
    Ok(request)
}

/// The model of a Gemini path: `/v1beta/models/{model}:{action}`.
fn gemini_model(path: &str) -> Option<String> {
    let rest = path.rsplit_once("/models/")?.1;
    let model = rest.split_once(':')?.0;
    (!model.is_empty()).then(|| model.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t) in [
            ("gpt-*", "gpt-4o"),
            ("o*", "o3-mini"),
            ("*", ""),
            ("*/*", "anthropic/claude-sonnet-4"),
            ("claude-*-4*", "claude-sonnet-4-5"),
            ("exact", "exact"),
            ("a*b*c", "aXbYbc"),
        ] {
            assert!(glob(p, t), "{p} {t}");
        }
        for (p, t) in [
            ("gpt-*", "o3"),
            ("o*", "gpt-4o"),
            ("*/*", "gpt-4o"),
            ("exact", "exact2"),
            ("a*b*c", "aXbYb"),
            ("", "x"),
        ] {
            assert!(!glob(p, t), "{p} {t}");
        }
    }

    fn upstream(name: &str, apis: &[LlmApi], models: &[&str]) -> Upstream {
        let url = crate::UpstreamUrl::parse("http://127.0.0.1:9").unwrap();
        let mut config = UpstreamConfig::single(url, None);
        config.name = name.into();
        config.apis = apis.to_vec();
        config.models = models.iter().map(|m| m.to_string()).collect();
        config.build().unwrap()
    }

    #[test]
    fn the_first_matching_upstream_wins() {
        use LlmApi::*;
        let routes = Routes::new(vec![
            upstream("openai", &[OpenAiChat, OpenAiResponses], &["gpt-*", "o*"]),
            upstream("anthropic", &[AnthropicMessages], &[]),
            upstream("openrouter", &[OpenAiChat], &["*/*"]),
            upstream("fallback", &[OpenAiChat], &[]),
        ]);
        let name = |api, model| routes.pick(api, model).map(|u| u.config.name.as_str());
        assert_eq!(name(OpenAiChat, Some("gpt-4o")), Some("openai"));
        assert_eq!(name(OpenAiChat, Some("meta/llama")), Some("openrouter"));
        assert_eq!(name(OpenAiChat, Some("mistral-large")), Some("fallback"));
        assert_eq!(name(OpenAiChat, None), Some("openai"));
        assert_eq!(name(AnthropicMessages, Some("anything")), Some("anthropic"));
        assert_eq!(name(OpenAiResponses, Some("claude-x")), None);
        assert_eq!(name(GeminiGenerate, Some("gemini-2.5-flash")), None);
        assert!(routes.needs_model(OpenAiChat));
        assert!(!routes.needs_model(AnthropicMessages));
        assert!(
            routes.needs_model(GeminiGenerate),
            "the 404 names the model"
        );
    }

    #[test]
    fn gemini_models_from_the_path() {
        assert_eq!(
            gemini_model("/v1beta/models/gemini-2.5-flash:streamGenerateContent").as_deref(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(gemini_model("/v1beta/models/:generateContent"), None);
    }
}
