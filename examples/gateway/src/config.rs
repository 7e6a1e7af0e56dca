//! [`GatewayConfig`]: what the gateway is told by its environment (and `GATEWAY_CONFIG`).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_ADDR` | `127.0.0.1:8080` | where to listen |
//! | `DATABASE_URL` | `sqlite://activity.db` | users, sessions and activity, in one database: `sqlite://FILE` (created if missing), `postgres://user@host/db`, `memory:` (nothing kept after exit), or `noop:` (activity discarded: benchmarks) |
//! | `GATEWAY_CONFIG` | none | a TOML file naming several upstreams, the APIs and models each serves, their keys' variables ([`config_file`](crate::config_file)) |
//! | `UPSTREAM_URL` | the mock upstream, started in-process on a free port | one OpenAI / Anthropic / Gemini compatible base URL for every API (`https://api.openai.com`, `http://host:port/prefix`); when set, it wins over `GATEWAY_CONFIG`'s upstreams; records name it by its `host:port` |
//! | `UPSTREAM_API_KEY` | none | sent to `UPSTREAM_URL` as each API expects; the client's own key never is |
//! | `METRICS_TOKEN` | none | when set, `GET /metrics` needs `Authorization: Bearer <token>` |
//! | `SHUTDOWN_GRACE_SECS` | `30` | how long in-flight requests may run on after SIGINT/SIGTERM |
//! | `ACTIVITY_BATCH_INTERVAL_MS` | `1000` | how long the writer gathers records into one batch (fewer, larger transactions disturb the requests less: see BENCHMARKS.md; the activity API flushes before it reads, so reads stay fresh) |
//! | `PRICES_FILE` | the embedded table | a LiteLLM price JSON to price requests with, reloaded on `SIGHUP` ([`prices`](crate::prices)) |
//! | `GATEWAY_ACTIVITY` | `on` | `off` serves the LLM routes without `ActivityLayer` (and so without spend control): the load test's baseline |
//! | `GATEWAY_BUDGET` | `on` | `off` serves without credits and limits (no `BudgetLayer`; every request is still accounted): a gateway that only records, and the load test's way to measure the activity layer apart from the budget store's round trips |
//! | `LOG_FORMAT`, `RUST_LOG`, `NO_COLOR` | `text`, `info`, unset | the log on standard output: `json` for one JSON object per line; colours only on a terminal ([`logging`](crate::logging)) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` and the other `OTEL_*` | off | every record also exported as an OpenTelemetry span, beside the database ([`telemetry`](crate::telemetry)) |
//! | `INITIAL_CREDITS`, `ADMIN_TOKEN`, `BUDGET_STORE` | `1.00`, none, the database | spend control: see [`BudgetConfig`](crate::budget::BudgetConfig) |
//! | `ACTIVITY_NATS_URL`, `ACTIVITY_NATS_*` | unset | fleet mode: activity through JetStream, written by ingesters ([`fleet`](crate::fleet)) |
//! | `ACTIVITY_SPOOL_DIR` | `activity-spool` (none for `memory:` and `noop:`) | the writer's crash-safe spool, in a subdirectory per listen address (`activity-spool/127.0.0.1_8080`: one process each): every record is appended there and synced every `ACTIVITY_SPOOL_SYNC_MS` before the database write, kept through a database outage (up to 1 GiB) and written after a crash or restart; `off` turns it off |
//! | `ACTIVITY_WRITER_THREAD` | `own` | `own`: the activity writer (batches, spool, database writes) runs on a thread of its own, so a batch never holds a worker the requests need (BENCHMARKS.md, "Closed loop, 8 connections"); `shared`: on the request runtime's workers |
//! | `TOKIO_WORKER_THREADS`, `GATEWAY_EVENT_INTERVAL`, `GATEWAY_GLOBAL_QUEUE_INTERVAL` | Tokio's | the request runtime's workers and scheduler knobs ([`runtime`](crate::runtime)) |
//! | `ACTIVITY_SPOOL_SYNC_MS` | `50` | how often the spool is synced to disk: a `kill -9` loses at most the records of one interval |
//!
//! The bounds (timeouts, connection cap, registration rate) have their own variables, listed
//! in [`limits`](crate::limits).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Uri};
use tower_activity::{LlmApi, SpoolConfig, WriterConfig};

use crate::fleet::FleetConfig;
use crate::limits::Limits;
use crate::routing::Upstream;
use crate::telemetry::OtlpConfig;

/// The mock upstream's per-request controls (`x-mock-chunks` …), which the gateway forwards
/// to the mock it starts itself and in tests, never to a real upstream.
pub const MOCK_HEADERS: [&str; 4] = [
    "x-mock-chunks",
    "x-mock-delay-ms",
    "x-mock-cache-read",
    "x-mock-error",
];

/// The default of `DATABASE_URL`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://activity.db";

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Where users, sessions and activity are kept (see [`Storage::open`](crate::Storage::open)).
    pub database_url: String,
    /// The one upstream base URL of `UPSTREAM_URL`; when set it is the only upstream. `None`
    /// and no [`upstreams`](Self::upstreams): `main` starts the mock upstream in-process.
    pub upstream_url: Option<UpstreamUrl>,
    /// The key sent to [`upstream_url`](Self::upstream_url).
    pub upstream_api_key: Option<String>,
    /// The client headers [`upstream_url`](Self::upstream_url) gets beyond each API's own
    /// (none from the environment; [`MOCK_HEADERS`] for the mock upstream).
    pub upstream_forward_headers: Vec<HeaderName>,
    /// The upstreams of `GATEWAY_CONFIG`, in order (used when `upstream_url` is `None`).
    pub upstreams: Vec<UpstreamConfig>,
    /// When set, `/metrics` needs it as a Bearer token.
    pub metrics_token: Option<String>,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Whether the LLM routes run through `ActivityLayer` (`GATEWAY_ACTIVITY=off` turns it
    /// off, to measure what the layer costs).
    pub activity: bool,
    /// Whether spend control (credits and limits, [`budget`](crate::budget)) runs in front of
    /// the LLM routes (`GATEWAY_BUDGET=off` turns it off; it needs `activity`).
    pub budget_enabled: bool,
    /// The activity writer's tuning.
    pub writer: WriterConfig,
    /// Timeouts, caps and rates ([`Limits`]).
    pub limits: Limits,
    /// `PRICES_FILE`: a LiteLLM price JSON instead of the embedded table.
    pub prices_file: Option<PathBuf>,
    /// The OpenTelemetry export beside the database (`None`: off).
    pub otlp: Option<OtlpConfig>,
    /// Credits, the admin API and the budget store ([`BudgetConfig`](crate::budget::BudgetConfig)).
    pub budget: crate::budget::BudgetConfig,
    /// Fleet mode: activity published to JetStream instead of written to the database.
    pub fleet: Option<FleetConfig>,
}

/// One upstream as configured: [`GatewayConfig::routes`] makes it an [`Upstream`].
#[derive(Clone)]
pub struct UpstreamConfig {
    /// What records carry in `upstream`.
    pub name: String,
    /// The base URL.
    pub url: UpstreamUrl,
    /// The key, read from the variable `api_key_env` names.
    pub api_key: Option<String>,
    /// The APIs it serves.
    pub apis: Vec<LlmApi>,
    /// Model globs; empty: every model.
    pub models: Vec<String>,
    /// Client headers allowed through beyond each API's own.
    pub forward_headers: Vec<HeaderName>,
    /// Whether the provider's rate-limit headers come back.
    pub rate_limit_headers: bool,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("apis", &self.apis)
            .field("models", &self.models)
            .field("forward_headers", &self.forward_headers)
            .field("rate_limit_headers", &self.rate_limit_headers)
            .finish()
    }
}

impl UpstreamConfig {
    /// One upstream serving every API and model at `url` (what `UPSTREAM_URL` gives), named
    /// by its `host:port`.
    pub fn single(url: UpstreamUrl, api_key: Option<String>) -> Self {
        UpstreamConfig {
            name: url.host().to_owned(),
            url,
            api_key,
            apis: crate::config_file::APIS.to_vec(),
            models: Vec::new(),
            forward_headers: Vec::new(),
            rate_limit_headers: false,
        }
    }

    /// The runtime upstream; `Err` when the key cannot be a header value.
    pub fn build(&self) -> Result<Upstream, String> {
        let key = self
            .api_key
            .as_deref()
            .map(|k| {
                let mut v = HeaderValue::from_str(k).map_err(|_| {
                    format!(
                        "the key of upstream {:?} contains characters a header cannot carry",
                        self.name
                    )
                })?;
                v.set_sensitive(true);
                Ok::<_, String>(v)
            })
            .transpose()?;
        Ok(Upstream {
            config: self.clone(),
            key,
        })
    }
}

impl GatewayConfig {
    /// A configuration for tests: memory storage, the given upstream (the mock's
    /// [`MOCK_HEADERS`] forwarded to it), no key, credits no test runs out of by accident
    /// ([`BudgetConfig::for_tests`](crate::budget::BudgetConfig::for_tests)).
    pub fn for_upstream(upstream: UpstreamUrl) -> Self {
        GatewayConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: "memory:".to_owned(),
            upstream_url: Some(upstream),
            upstream_api_key: None,
            upstream_forward_headers: mock_headers(),
            upstreams: Vec::new(),
            metrics_token: None,
            shutdown_grace: Duration::from_secs(30),
            activity: true,
            budget_enabled: true,
            writer: gateway_writer(),
            limits: Limits::default(),
            prices_file: None,
            otlp: None,
            budget: crate::budget::BudgetConfig::for_tests(),
            fleet: None,
        }
    }

    /// The upstreams in routing order: `UPSTREAM_URL`'s alone when set, else the file's.
    pub fn routes(&self) -> Result<Vec<Upstream>, String> {
        match &self.upstream_url {
            Some(url) => {
                let mut single = UpstreamConfig::single(url.clone(), self.upstream_api_key.clone());
                single.forward_headers = self.upstream_forward_headers.clone();
                Ok(vec![single.build()?])
            }
            None if self.upstreams.is_empty() => {
                Err("no upstream: set UPSTREAM_URL or GATEWAY_CONFIG".to_owned())
            }
            None => self.upstreams.iter().map(UpstreamConfig::build).collect(),
        }
    }

    /// Reads the environment; `Err` is a one-line message naming the variable (or the
    /// file, line and key of `GATEWAY_CONFIG`).
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
        let upstreams = match var("GATEWAY_CONFIG")? {
            None => Vec::new(),
            Some(path) => {
                crate::config_file::load(&PathBuf::from(path), |name| var(name).ok().flatten())?
            }
        };
        if upstream_url.is_some() && !upstreams.is_empty() {
            tracing::warn!(
                "UPSTREAM_URL is set: it is the only upstream, GATEWAY_CONFIG's [[upstream]] tables are not used"
            );
        }
        let shutdown_grace = match var("SHUTDOWN_GRACE_SECS")? {
            None => Duration::from_secs(30),
            Some(v) => Duration::from_secs(v.parse().map_err(|_| {
                format!("SHUTDOWN_GRACE_SECS must be a whole number of seconds, got {v:?}")
            })?),
        };
        let activity = on_off("GATEWAY_ACTIVITY")?;
        let budget_enabled = on_off("GATEWAY_BUDGET")?;
        let mut writer = gateway_writer();
        if let Some(v) = var("ACTIVITY_BATCH_INTERVAL_MS")? {
            let ms: u64 = v.parse().ok().filter(|ms| *ms >= 1).ok_or_else(|| {
                format!("ACTIVITY_BATCH_INTERVAL_MS must be a whole number of milliseconds from 1, got {v:?}")
            })?;
            writer = writer.with_batch_interval(Duration::from_millis(ms));
        }
        if let Some(spool) = spool(&database_url, addr)? {
            writer = writer.with_spool(spool);
        }
        match var("ACTIVITY_WRITER_THREAD")?.as_deref() {
            None | Some("own") => {}
            Some("shared") => writer = writer.with_own_thread(false),
            Some(v) => {
                return Err(format!(
                    "ACTIVITY_WRITER_THREAD must be `own` or `shared`, got {v:?}"
                ));
            }
        }
        let metrics_token = var("METRICS_TOKEN")?;
        let prices_file = var("PRICES_FILE")?.map(PathBuf::from);
        Ok(GatewayConfig {
            budget: crate::budget::BudgetConfig::from_env()?,
            fleet: FleetConfig::from_env()?,
            writer,
            prices_file,
            addr,
            database_url,
            upstream_url,
            upstream_api_key,
            upstream_forward_headers: Vec::new(),
            upstreams,
            metrics_token,
            shutdown_grace,
            activity,
            budget_enabled,
            limits: limits_from_env()?,
            otlp: OtlpConfig::from_env()?,
        })
    }
}

/// A switch variable: unset or `on` is true, `off` false; anything else names the variable.
fn on_off(name: &str) -> Result<bool, String> {
    match var(name)?.as_deref() {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(v) => Err(format!("{name} must be `on` or `off`, got {v:?}")),
    }
}

/// [`MOCK_HEADERS`] as header names.
pub fn mock_headers() -> Vec<HeaderName> {
    MOCK_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect()
}

/// [`Limits`] with the variables [`limits`](crate::limits) lists applied.
fn limits_from_env() -> Result<Limits, String> {
    let mut l = Limits::default();
    let secs = |name: &str, into: &mut Duration| -> Result<(), String> {
        if let Some(v) = var(name)? {
            *into = v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{name} must be a number of seconds above 0, got {v:?}"))?;
        }
        Ok(())
    };
    secs("REQUEST_HEADER_TIMEOUT_SECS", &mut l.header_timeout)?;
    secs("REQUEST_BODY_IDLE_SECS", &mut l.body_idle)?;
    secs("REQUEST_BODY_TIMEOUT_SECS", &mut l.body_timeout)?;
    secs("UPSTREAM_CONNECT_TIMEOUT_SECS", &mut l.upstream_connect)?;
    secs("UPSTREAM_HEADER_TIMEOUT_SECS", &mut l.upstream_headers)?;
    secs("UPSTREAM_IDLE_TIMEOUT_SECS", &mut l.upstream_idle)?;
    if let Some(n) = count("GATEWAY_MAX_CONNECTIONS")? {
        l.max_connections = n as usize;
    }
    if let Some(n) = count("REGISTER_PER_MINUTE")? {
        l.register_per_minute = n;
    }
    Ok(l)
}

/// The gateway's writer tuning: the library's defaults with one-second batches, on a thread
/// of its own.
pub fn gateway_writer() -> WriterConfig {
    WriterConfig::default()
        .with_batch_interval(DEFAULT_BATCH_INTERVAL)
        .with_own_thread(true)
}

/// The default of `ACTIVITY_SPOOL_DIR`.
pub const DEFAULT_SPOOL_DIR: &str = "activity-spool";

/// The spool `ACTIVITY_SPOOL_DIR` and `ACTIVITY_SPOOL_SYNC_MS` ask for: on by default, except
/// for storage that keeps nothing (`memory:`, `noop:`). The directory is created here, so that
/// an unusable one is a clear error at start.
///
/// A spool belongs to one process, so each gateway keeps its own subdirectory, named after
/// the address it listens on (`activity-spool/127.0.0.1_8080`): several gateways on one host
/// never share one, and a gateway restarted on its address replays what it left.
fn spool(database_url: &str, addr: SocketAddr) -> Result<Option<SpoolConfig>, String> {
    let keeps_nothing = matches!(database_url.split(':').next(), Some("memory" | "noop"));
    let base = match var("ACTIVITY_SPOOL_DIR")? {
        Some(v) if v == "off" => return Ok(None),
        None if keeps_nothing => return Ok(None),
        Some(v) => v,
        None => DEFAULT_SPOOL_DIR.to_owned(),
    };
    let own = addr.to_string().replace([':', '[', ']'], "_");
    let dir = std::path::Path::new(&base).join(own).display().to_string();
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!("ACTIVITY_SPOOL_DIR {dir:?} cannot be created: {e} (or set it to `off`)")
    })?;
    let mut spool = SpoolConfig::new(dir);
    if let Some(v) = var("ACTIVITY_SPOOL_SYNC_MS")? {
        let ms: u64 = v.parse().ok().filter(|ms| *ms >= 1).ok_or_else(|| {
            format!(
                "ACTIVITY_SPOOL_SYNC_MS must be a whole number of milliseconds from 1, got {v:?}"
            )
        })?;
        spool = spool.with_sync_interval(Duration::from_millis(ms));
    }
    Ok(Some(spool))
}

/// The default of `ACTIVITY_BATCH_INTERVAL_MS`.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A set, non-empty variable (trimmed); unset or empty is `None`.
/// The environment variable `name` as a whole number from 1 (`None` when unset); `Err`
/// names the variable and the value.
pub(crate) fn count(name: &str) -> Result<Option<u32>, String> {
    whole_from_one(name, var(name)?)
}

/// `value` (of the variable `name`) as a whole number from 1.
fn whole_from_one(name: &str, value: Option<String>) -> Result<Option<u32>, String> {
    value
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{name} must be a whole number from 1, got {v:?}"))
        })
        .transpose()
}

pub(crate) fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not UTF-8")),
    }
}

/// An upstream base URL: `http[s]://[user:password@]host[:port][/prefix]`, no query. Request
/// paths are appended to the prefix (`http://h/openai` + `/v1/chat/completions`).
///
/// A `user:password` in the URL is a credential: it is sent as `Authorization: Basic` when the
/// upstream's key does not already use `Authorization`, and never displayed — not in logs,
/// errors, `502` bodies or records (which carry the upstream's name).
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `http[s]://host[:port]`, no userinfo, no trailing slash.
    pub origin: String,
    /// The path prefix without a trailing slash (often empty).
    pub prefix: String,
    /// `Basic base64(user:password)` when the URL had userinfo; sensitive.
    basic: Option<HeaderValue>,
}

impl std::fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamUrl")
            .field("origin", &self.origin)
            .field("prefix", &self.prefix)
            .field("basic", &self.basic.as_ref().map(|_| "***"))
            .finish()
    }
}

impl UpstreamUrl {
    /// Parses and checks a base URL. Errors never repeat the URL's userinfo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shown = redact(text);
        let uri: Uri = text.parse().map_err(|e| {
            format!("must be a URL like http://127.0.0.1:8081, got {shown:?} ({e})")
        })?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme,
            _ => {
                return Err(format!(
                    "must start with http:// or https://, got {shown:?}"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("must name a host, got {shown:?}"))?;
        if uri.query().is_some() {
            return Err(format!("must not have a query, got {shown:?}"));
        }
        let (userinfo, host) = match authority.as_str().rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority.as_str()),
        };
        let basic = userinfo
            .map(|userinfo| {
                use base64::Engine;
                let decoded = percent_encoding::percent_decode_str(userinfo).collect::<Vec<u8>>();
                let encoded = base64::engine::general_purpose::STANDARD.encode(decoded);
                let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| format!("has userinfo a header cannot carry: {shown:?}"))?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        Ok(UpstreamUrl {
            origin: format!("{scheme}://{host}"),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            basic,
        })
    }

    /// The upstream for a server listening at `addr` (the in-process mock).
    pub fn local(addr: SocketAddr) -> Self {
        UpstreamUrl {
            origin: format!("http://{addr}"),
            prefix: String::new(),
            basic: None,
        }
    }

    /// `host[:port]`: the name of an upstream given by `UPSTREAM_URL`.
    pub fn host(&self) -> &str {
        self.origin
            .split_once("://")
            .map_or(&self.origin, |(_, h)| h)
    }

    /// `Authorization: Basic …` from the URL's userinfo, if it had one.
    pub fn basic_auth(&self) -> Option<&HeaderValue> {
        self.basic.as_ref()
    }
}

/// `text` with any `user:password@` of its authority replaced by `***@`.
pub fn redact(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    match text[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]),
        None => text.to_owned(),
    }
}

/// Displays `origin` + `prefix`: never the userinfo.
impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_numbers_from_one() {
        assert_eq!(whole_from_one("X", None), Ok(None));
        assert_eq!(whole_from_one("X", Some("31".into())), Ok(Some(31)));
        for bad in ["0", "-1", "1.5", "many"] {
            let e = whole_from_one("X", Some(bad.into())).unwrap_err();
            assert!(e.starts_with("X must be") && e.contains(bad), "{e}");
        }
    }

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

    #[test]
    fn userinfo_is_a_credential_never_shown() {
        let u = UpstreamUrl::parse("https://ada:s%40cret@proxy.example:8443/v").unwrap();
        assert_eq!(u.to_string(), "https://proxy.example:8443/v");
        assert_eq!(u.host(), "proxy.example:8443");
        assert!(!format!("{u:?}").contains("cret"));
        // base64("ada:s@cret")
        assert_eq!(u.basic_auth().unwrap(), "Basic YWRhOnNAY3JldA==");
        assert!(u.basic_auth().unwrap().is_sensitive());
        for bad in ["ftp://ada:hunter2@x", "http://ada:hunter2@x?q=1"] {
            let err = UpstreamUrl::parse(bad).unwrap_err();
            assert!(!err.contains("hunter2") && err.contains("***@x"), "{err}");
        }
        assert_eq!(redact("http://h/p@q"), "http://h/p@q");
    }
}
