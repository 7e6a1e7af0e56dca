//! The activity dashboard: one static page that reads the gateway's activity API.
//!
//! [`routes`] is merged into the gateway's router; [`live::stream`] is mounted at
//! `GET /user/activity/stream` behind the gateway's authentication.
//!
//! | route | serves |
//! |---|---|
//! | `GET /dashboard/activity` | the page (`index.html`) |
//! | `GET /dashboard/activity/{file}` | its style (`app.css`) and script modules (`*.mjs`) |
//!
//! The page, its style and its scripts are plain files in this folder, embedded with
//! `include_str!`: no build step, no CDN, no framework. The scripts are ES modules, one job
//! each: `app.mjs` (sign-in, loading, the log, wiring), `budget.mjs` (credits, limit bars,
//! budget alerts), `charts.mjs` (SVG charts drawn by hand), `detail.mjs` (what a log row's
//! detail shows), `feed.mjs` (the live feed), `format.mjs` (money, numbers, dates), `dom.mjs`.
//! It asks for an API key once (kept in the browser's `localStorage`; "Sign out" forgets
//! it) and calls, with `Authorization: Bearer KEY`:
//!
//! - `GET /user/activity/stats?days=N` or `?from=&to=`: totals, the daily chart, the
//!   breakdowns by model and provider;
//! - `GET /user/activity/log?limit=&page=&from=&to=&model=&provider=`: the log;
//! - `GET /user/credits`: the balance and each limit's use, as bars (re-read with the stats);
//! - `GET /user/activity/stream`: new records, prepended to the log and added to the totals
//!   as they are stored (see [`live`]).
//!
//! Every response carries a strict `Content-Security-Policy` (same-origin scripts, styles and
//! requests only), so the page cannot load anything from elsewhere even by mistake.

pub mod live;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the page is served.
pub const PAGE: &str = "/dashboard/activity";

const INDEX_HTML: &str = include_str!("index.html");

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The page's files, served under `/dashboard/activity/`: name, content type, content.
const ASSETS: [(&str, &str, &str); 8] = [
    ("app.css", CSS, include_str!("app.css")),
    ("app.mjs", JS, include_str!("app.mjs")),
    ("budget.mjs", JS, include_str!("budget.mjs")),
    ("charts.mjs", JS, include_str!("charts.mjs")),
    ("detail.mjs", JS, include_str!("detail.mjs")),
    ("dom.mjs", JS, include_str!("dom.mjs")),
    ("feed.mjs", JS, include_str!("feed.mjs")),
    ("format.mjs", JS, include_str!("format.mjs")),
];

/// Same-origin only; `data:` images for the empty favicon.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The page and its assets, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let page = get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) });
    ASSETS.iter().fold(
        Router::new().route(PAGE, page),
        |router, &(name, content_type, body)| {
            let path = format!("{PAGE}/{name}");
            router.route(&path, get(move || async move { asset(content_type, body) }))
        },
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
