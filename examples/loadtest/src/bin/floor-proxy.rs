//! The floor of any Tokio/hyper reverse proxy on this machine: a control for the gateway's
//! latency figures, not a product.
//!
//! It accepts HTTP/1.1 on `FLOOR_ADDR` (default `127.0.0.1:8090`) and sends every request,
//! method, path, headers and body unchanged, to `UPSTREAM_URL` (default
//! `http://127.0.0.1:8080`) through hyper-util's pooled client, streaming the answer back —
//! the same server, client, runtime and socket options as the gateway (`TCP_NODELAY` both
//! ways, Tokio's multi-thread runtime with a worker per CPU), and nothing else: no routing,
//! no authentication, no limits, no activity layer. What the gateway adds over this floor is
//! its own; what this floor adds over the upstream alone is the cost of one more Tokio/hyper
//! hop on the machine (`scripts/peer-c8.sh --variants "direct floor baseline sqlite"`).
//!
//! ```sh
//! cargo build --release -p loadtest --bin floor-proxy
//! FLOOR_ADDR=127.0.0.1:9000 UPSTREAM_URL=http://127.0.0.1:8080 target/release/floor-proxy
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The answer's body: the upstream's, or a short error text.
type Answer = UnsyncBoxBody<Bytes, hyper::Error>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = env_or("FLOOR_ADDR", "127.0.0.1:8090")
        .parse()
        .map_err(|e| format!("FLOOR_ADDR: {e} (expected host:port, e.g. 127.0.0.1:8090)"))?;
    let upstream: Uri = env_or("UPSTREAM_URL", "http://127.0.0.1:8080")
        .parse()
        .map_err(|e| format!("UPSTREAM_URL: {e} (expected http://host:port)"))?;
    let authority = match (upstream.scheme(), upstream.authority()) {
        (Some(scheme), Some(authority)) if *scheme == Scheme::HTTP => authority.clone(),
        _ => return Err("UPSTREAM_URL: expected http://host:port (plain HTTP only)".into()),
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("FLOOR_ADDR {addr}: cannot listen: {e}"))?;
    eprintln!("floor-proxy: {addr} -> {upstream}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("floor-proxy: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let authority = authority.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| forward(client.clone(), authority.clone(), request));
            // A client that goes away mid-request is not this control's concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Sends `request` to the upstream at `authority` and returns its answer as it comes.
async fn forward(
    client: Client<HttpConnector, Incoming>,
    authority: Authority,
    request: Request<Incoming>,
) -> Result<Response<Answer>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let target = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path)
        .build();
    let target = match target {
        Ok(uri) => uri,
        Err(e) => return Ok(error(StatusCode::BAD_REQUEST, format!("bad target: {e}"))),
    };
    parts.uri = target;
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response.map(BodyExt::boxed_unsync)),
        Err(e) => Ok(error(StatusCode::BAD_GATEWAY, format!("upstream: {e}"))),
    }
}

/// A plain-text answer of `status`.
fn error(status: StatusCode, text: String) -> Response<Answer> {
    let body = Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// The variable `name`, or `default` when it is unset.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
