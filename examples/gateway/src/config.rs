//! [`GatewayConfig`]: what the gateway is told by its environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_ADDR` | `127.0.0.1:8080` | where to listen |
//! | `DATABASE_URL` | `sqlite://activity.db` | users, sessions and activity, in one database: `sqlite://FILE` (created if missing), `postgres://user@host/db`, `memory:` (nothing kept after exit), or `noop:` (activity discarded: benchmarks) |
//! | `UPSTREAM_URL` | the mock upstream, started in-process on a free port | an OpenAI / Anthropic / Gemini compatible base URL (`https://api.openai.com`, `http://host:port/prefix`) |
//! | `UPSTREAM_API_KEY` | none | sent upstream as each API expects; the client's own key never is |
//! | `SHUTDOWN_GRACE_SECS` | `30` | how long in-flight requests may run on after SIGINT/SIGTERM |
//! | `ACTIVITY_BATCH_INTERVAL_MS` | `1000` | how long the writer gathers records into one batch (fewer, larger transactions disturb the requests less: see BENCHMARKS.md; the activity API flushes before it reads, so reads stay fresh) |
//! | `GATEWAY_ACTIVITY` | `on` | `off` serves the LLM routes without `ActivityLayer`: the load test's baseline |

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Uri;
use tower_activity::WriterConfig;

/// The default of `DATABASE_URL`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://activity.db";

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Where users, sessions and activity are kept (see [`Storage::open`](crate::Storage::open)).
    pub database_url: String,
    /// The upstream base URL; `None` starts the mock upstream in-process.
    pub upstream_url: Option<UpstreamUrl>,
    /// The key sent upstream.
    pub upstream_api_key: Option<String>,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Whether the LLM routes run through `ActivityLayer` (`GATEWAY_ACTIVITY=off` turns it
    /// off, to measure what the layer costs).
    pub activity: bool,
    /// The activity writer's tuning.
    pub writer: WriterConfig,
}

impl GatewayConfig {
    /// A configuration for tests: memory storage, the given upstream, no key.
    pub fn for_upstream(upstream: UpstreamUrl) -> Self {
        GatewayConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: "memory:".to_owned(),
            upstream_url: Some(upstream),
            upstream_api_key: None,
            shutdown_grace: Duration::from_secs(30),
            activity: true,
            writer: gateway_writer(),
        }
    }

    /// Reads the environment; `Err` is a one-line message naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let addr = match var("GATEWAY_ADDR")? {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().map_err(|_| {
                format!("GATEWAY_ADDR must be an address like 127.0.0.1:8080, got {v:?}")
            })?,
        };
        let database_url = var("DATABASE_URL")?.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let upstream_url = var("UPSTREAM_URL")?
            .map(|v| UpstreamUrl::parse(&v).map_err(|e| format!("UPSTREAM_URL {e}")))
            .transpose()?;
        let upstream_api_key = var("UPSTREAM_API_KEY")?;
        let shutdown_grace = match var("SHUTDOWN_GRACE_SECS")? {
            None => Duration::from_secs(30),
            Some(v) => Duration::from_secs(v.parse().map_err(|_| {
                format!("SHUTDOWN_GRACE_SECS must be a whole number of seconds, got {v:?}")
            })?),
        };
        let activity = match var("GATEWAY_ACTIVITY")?.as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => return Err(format!("GATEWAY_ACTIVITY must be `on` or `off`, got {v:?}")),
        };
        let mut writer = gateway_writer();
        if let Some(v) = var("ACTIVITY_BATCH_INTERVAL_MS")? {
            let ms: u64 = v.parse().ok().filter(|ms| *ms >= 1).ok_or_else(|| {
                format!("ACTIVITY_BATCH_INTERVAL_MS must be a whole number of milliseconds from 1, got {v:?}")
            })?;
            writer = writer.with_batch_interval(Duration::from_millis(ms));
        }
        Ok(GatewayConfig {
            writer,
            addr,
            database_url,
            upstream_url,
            upstream_api_key,
            shutdown_grace,
            activity,
        })
    }
}

/// The gateway's writer tuning: the library's defaults with one-second batches.
pub fn gateway_writer() -> WriterConfig {
    WriterConfig::default().with_batch_interval(DEFAULT_BATCH_INTERVAL)
}

/// The default of `ACTIVITY_BATCH_INTERVAL_MS`.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A set, non-empty variable (trimmed); unset or empty is `None`.
fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!("{name} is not UTF-8: {v:?}")),
    }
}

/// An upstream base URL: `http[s]://host[:port][/prefix]`, no query. Request paths are appended
/// to the prefix (`http://h/openai` + `/v1/chat/completions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `http[s]://host[:port]`, no trailing slash.
    pub origin: String,
    /// The path prefix without a trailing slash (often empty).
    pub prefix: String,
}

impl UpstreamUrl {
    /// Parses and checks a base URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("must be a URL like http://127.0.0.1:8081, got {text:?} ({e})"))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme,
            _ => return Err(format!("must start with http:// or https://, got {text:?}")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("must name a host, got {text:?}"))?;
        if uri.query().is_some() {
            return Err(format!("must not have a query, got {text:?}"));
        }
        Ok(UpstreamUrl {
            origin: format!("{scheme}://{authority}"),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream for a server listening at `addr` (the in-process mock).
    pub fn local(addr: SocketAddr) -> Self {
        UpstreamUrl {
            origin: format!("http://{addr}"),
            prefix: String::new(),
        }
    }
}

impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let u = UpstreamUrl::parse("http://127.0.0.1:9000/openai/").unwrap();
        assert_eq!(
            (u.origin.as_str(), u.prefix.as_str()),
            ("http://127.0.0.1:9000", "/openai")
        );
        let u = UpstreamUrl::parse("https://api.openai.com").unwrap();
        assert_eq!(u.to_string(), "https://api.openai.com");
        assert!(UpstreamUrl::parse("ftp://example.com").is_err());
        assert!(UpstreamUrl::parse("localhost:9000").is_err());
    }
}
