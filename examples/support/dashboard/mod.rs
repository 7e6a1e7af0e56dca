//! The activity dashboard: one static page that reads the gateway's activity API.
//!
//! Include it with `#[path = "…/examples/support/dashboard/mod.rs"] mod dashboard;` and merge
//! [`routes`] into the app's router; mount [`live::stream`] at `GET /user/activity/stream`
//! behind the app's authentication.
//!
//! | route | serves |
//! |---|---|
//! | `GET /dashboard/activity` | the page (`index.html`) |
//! | `GET /dashboard/activity/app.css`, `…/app.js` | its style and script |
//!
//! The page, its style and its script are plain files in this folder, embedded with
//! `include_str!`: no build step, no CDN, no framework; charts are SVG drawn by the script.
//! It asks for an API key once (kept in the browser's `localStorage`; "Sign out" forgets
//! it) and calls, with `Authorization: Bearer KEY`:
//!
//! - `GET /user/activity/stats?days=N` or `?from=&to=`: totals, the daily chart, the
//!   breakdowns by model and provider;
//! - `GET /user/activity/log?limit=&page=&from=&to=&model=&provider=`: the log;
//! - `GET /user/activity/stream`: new records, prepended to the log and added to the totals
//!   as they are stored (see [`live`]).
//!
//! Every response carries a strict `Content-Security-Policy` (same-origin scripts, styles and
//! requests only), so the page cannot load anything from elsewhere even by mistake.

// Every includer (example, test) uses a different part of this module.
#![allow(dead_code)]

pub mod live;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the page is served.
pub const PAGE: &str = "/dashboard/activity";

const INDEX_HTML: &str = include_str!("index.html");
const APP_CSS: &str = include_str!("app.css");
const APP_JS: &str = include_str!("app.js");

/// Same-origin only; `data:` images for the empty favicon.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The page and its assets, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            PAGE,
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard/activity/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/dashboard/activity/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files are embedded in the binary: a new build may change them under the same URL.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
