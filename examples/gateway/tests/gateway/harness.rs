//! A gateway served in-process on an ephemeral port, in front of the mock upstream (or any
//! upstream), with an HTTP client; and the throwaway databases the tests run it on.

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_activity::WriterStats;

use gateway::{
    ConnectionThreads, Gateway, GatewayConfig, ServeOptions, ServeReport, Storage, UpstreamUrl,
    serve_with,
};
use mock_upstream::MockConfig;

/// A running gateway and a client for it.
pub struct Harness {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// The gateway (its writer and storage).
    pub gateway: Gateway,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<ServeReport>>,
    /// The connection threads the gateway serves on, as the binary does; they stop with the
    /// harness (after its shutdown, so the tasks requests spawned there finish).
    _threads: ConnectionThreads,
}

/// A test's answer: status, headers, whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Harness {
    /// A gateway over `storage` in front of a fresh mock upstream.
    pub async fn start(storage: Storage) -> Harness {
        let (mock, _task) = mock_upstream::spawn(MockConfig::default())
            .await
            .expect("the mock upstream starts");
        Harness::with_upstream(
            storage,
            UpstreamUrl::local(mock),
            None,
            Duration::from_secs(10),
        )
        .await
    }

    /// A gateway over `storage` in front of `upstream`.
    pub async fn with_upstream(
        storage: Storage,
        upstream: UpstreamUrl,
        api_key: Option<&str>,
        grace: Duration,
    ) -> Harness {
        let mut config = GatewayConfig::for_upstream(upstream);
        config.upstream_api_key = api_key.map(str::to_owned);
        config.shutdown_grace = grace;
        Harness::with_config(storage, &config).await
    }

    /// A gateway over `storage` with `budget` (credits, admin token) in front of a fresh mock
    /// upstream.
    pub async fn with_budget(storage: Storage, budget: gateway::budget::BudgetConfig) -> Harness {
        let (mock, _task) = mock_upstream::spawn(MockConfig::default())
            .await
            .expect("the mock upstream starts");
        let mut config = GatewayConfig::for_upstream(UpstreamUrl::local(mock));
        config.budget = budget;
        Harness::with_config(storage, &config).await
    }

    /// A gateway over `storage` configured by `config` (its address is ignored).
    pub async fn with_config(storage: Storage, config: &GatewayConfig) -> Harness {
        let gateway = Gateway::with_storage(config, storage).expect("the gateway starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let close_feeds = gateway.close_feeds_handle();
        let shutdown = async move {
            shutdown.await;
            close_feeds();
        };
        let threads = ConnectionThreads::start(2).expect("the connection threads start");
        let options = ServeOptions {
            threads: Some(threads.clone()),
            ..gateway.serve_options()
        };
        let server = tokio::spawn(serve_with(listener, gateway.router(), shutdown, options));
        Harness {
            addr,
            gateway,
            client: Client::builder(TokioExecutor::new()).build_http(),
            stop: Some(stop),
            server: Some(server),
            _threads: threads,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request; the response body is left unread.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response<Incoming> {
        let body = body.into();
        let mut request = Request::builder().method(method).uri(self.url(path));
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.client
            .request(request.body(Full::new(body)).unwrap())
            .await
            .expect("the gateway answers")
    }

    /// Sends a request and reads the whole answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let response = self.send(method, path, headers, body).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST path` with `body` and no `Content-Type`.
    pub async fn client_post_raw(&self, path: &str, body: &'static str) -> Answer {
        let request = Request::post(self.url(path))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let response = self
            .client
            .request(request)
            .await
            .expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST path` with `key` as Bearer and a JSON body.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        let auth = format!("Bearer {key}");
        self.call(
            Method::POST,
            path,
            &[("authorization", &auth)],
            body.to_string(),
        )
        .await
    }

    /// `GET path` with `key` as Bearer.
    pub async fn get(&self, path: &str, key: &str) -> Answer {
        let auth = format!("Bearer {key}");
        self.call(Method::GET, path, &[("authorization", &auth)], "")
            .await
    }

    /// Registers `email`; returns `(user_id, api_key)`.
    pub async fn register(&self, email: &str) -> (String, String) {
        let answer = self
            .call(
                Method::POST,
                "/auth/register",
                &[],
                json!({ "email": email }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        let v = answer.json();
        (
            v["user_id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Waits until every record made so far is stored.
    pub async fn flush(&self) {
        self.gateway.writer().flush().await;
    }

    /// The caller's log page for `query` (after a flush), as JSON.
    pub async fn log(&self, key: &str, query: &str) -> Value {
        self.flush().await;
        let answer = self.get(&format!("/user/activity/log?{query}"), key).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()
    }

    /// The caller's stats for `query` (after a flush).
    pub async fn stats(&self, key: &str, query: &str) -> tower_activity::query::Stats {
        self.flush().await;
        let answer = self
            .get(&format!("/user/activity/stats?{query}"), key)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        serde_json::from_slice(&answer.body).expect("the Stats shape")
    }

    /// Sends the shutdown signal (the server stops accepting and drains).
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown, waits for the server, then drains the writer.
    pub async fn stop(&mut self) -> (ServeReport, WriterStats) {
        self.signal_shutdown();
        let report = match self.server.take() {
            Some(server) => server.await.expect("the server task"),
            None => ServeReport::default(),
        };
        let stats = self.gateway.shutdown(Duration::from_secs(10)).await;
        (report, stats)
    }
}

/// A fresh SQLite file in a fresh directory, removed when dropped.
pub struct TempDb(std::path::PathBuf);

impl TempDb {
    pub fn new() -> TempDb {
        let dir = std::env::temp_dir().join(format!("gateway-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("activity.db").display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh PostgreSQL database on the server `DATABASE_URL` names, dropped when done.
pub struct TempPg {
    admin: String,
    name: String,
}

impl TempPg {
    pub async fn new() -> TempPg {
        use sqlx::Connection;
        let admin = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("gateway_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at DATABASE_URL={admin} is unreachable ({e}): start it or set DATABASE_URL")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        TempPg { admin, name }
    }

    /// `DATABASE_URL` with the fresh database's name instead.
    pub fn url(&self) -> String {
        let (server, _) = self
            .admin
            .rsplit_once('/')
            .expect("DATABASE_URL ends in /DBNAME");
        format!("{server}/{}", self.name)
    }

    pub async fn drop_database(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// What an [`Echo`] upstream received: one request's URI and headers.
#[derive(Debug, Clone)]
pub struct Seen {
    pub uri: String,
    pub headers: HeaderMap,
}

/// An upstream that answers every request with JSON naming what it received (`uri`,
/// `headers`), with a few provider response headers beside (a request id, a rate-limit
/// header, an organisation, a cookie), and keeps what it saw.
pub struct Echo {
    pub addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

/// The response headers an [`Echo`] sends with every answer.
pub const ECHO_RESPONSE_HEADERS: [(&str, &str); 6] = [
    ("x-request-id", "req_123"),
    ("x-ratelimit-remaining-requests", "99"),
    ("openai-organization", "org-gateway-account"),
    ("set-cookie", "upstream=1"),
    ("server", "echo"),
    ("anthropic-ratelimit-tokens-remaining", "1000"),
];

impl Echo {
    pub async fn start() -> Echo {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let log = log.clone();
            async move {
                let headers: std::collections::BTreeMap<String, String> = request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let uri = request.uri().to_string();
                log.lock().unwrap().push(Seen {
                    uri: uri.clone(),
                    headers: request.headers().clone(),
                });
                let mut response =
                    axum::Json(json!({ "uri": uri, "headers": headers })).into_response();
                for (name, value) in ECHO_RESPONSE_HEADERS {
                    response
                        .headers_mut()
                        .insert(name, http::HeaderValue::from_static(value));
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Echo { addr, seen }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
