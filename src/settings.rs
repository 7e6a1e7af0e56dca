//! What every request of a layer shares: the price table, the provider rules, the caps, the
//! routes and the writer. [`ActivityLayer`](crate::ActivityLayer) builds it once; services,
//! futures, bodies and the drop guard hold it through an `Arc`. A leaf: it imports only the
//! record, pricing, provider, attribution and writer types, and nothing imports the layer.

use std::sync::Arc;

use http::HeaderName;
use http::request::Parts;

use crate::attribution::Attribution;
use crate::pricing::SharedPrices;
use crate::provider::ProviderRules;
use crate::record::LlmApi;
use crate::writer::ActivityWriter;

/// Derives an [`Attribution`] from a request head (see
/// [`ActivityLayerBuilder::attribution`](crate::ActivityLayerBuilder::attribution)).
pub(crate) type AttributionHook = dyn Fn(&Parts) -> Option<Attribution> + Send + Sync;

/// The layer's settings, shared by every service and body it makes.
pub(crate) struct Settings {
    pub(crate) prices: SharedPrices,
    pub(crate) providers: ProviderRules,
    pub(crate) attribution: Option<Arc<AttributionHook>>,
    pub(crate) max_request_body: usize,
    pub(crate) max_response_body: usize,
    pub(crate) max_sse_line: usize,
    pub(crate) include_usage: bool,
    pub(crate) routes: Vec<(String, LlmApi)>,
    pub(crate) record_id_header: Option<HeaderName>,
    pub(crate) writer: ActivityWriter,
}

impl Settings {
    /// The wire format of `path`: an explicit route first, then [`LlmApi::detect`].
    pub(crate) fn api_for(&self, path: &str) -> LlmApi {
        api_for(&self.routes, path)
    }
}

/// The wire format of `path`: the first of `routes` naming it exactly, else
/// [`LlmApi::detect`]. The budget layer routes with it too.
pub(crate) fn api_for(routes: &[(String, LlmApi)], path: &str) -> LlmApi {
    routes
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, api)| *api)
        .unwrap_or_else(|| LlmApi::detect(path))
}
