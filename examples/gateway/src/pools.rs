//! [`PerThreadClient`]: the upstream client with one connection pool per thread that uses it.
//!
//! A pooled upstream connection is a task on the runtime of the request that opened it, and
//! that task polls the request bodies of every request sent over it. With one pool for the
//! whole gateway, a request served on one [connection thread](crate::connections) was often
//! sent over a connection whose task ran on another: its body's timers (armed on the first
//! thread's timer wheel) were reset from the second, taking the first thread's timer lock,
//! and buffers allocated on one thread were freed on the other, taking its allocator arena's
//! lock — the very meetings the connection threads are there to avoid (BENCHMARKS.md, "Where
//! the layer-off tail comes from"). With a pool per thread, a request, its upstream
//! connection and its buffers stay on one thread. Each thread opens its own connections to an
//! upstream (two threads: up to twice the idle connections of one pool).

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::Either;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use tower_activity::ActivityRequestBody;

/// A request body as the upstream client sends it: the router's [`Body`] passed through, the
/// activity layer's (or the budget's) body around it, or the activity layer's around the
/// budget's — each as it is, not boxed again into a [`Body`] (an allocation per request, and
/// a second dynamic call per frame).
pub type Sent = Either<ActivityRequestBody<Body>, ActivityRequestBody<ActivityRequestBody<Body>>>;

type Https = Client<HttpsConnector<HttpConnector>, Sent>;

thread_local! {
    /// This thread's client of each [`PerThreadClient`] (by identity), the dead ones pruned
    /// when a new one is added.
    static CLIENTS: RefCell<Vec<(Weak<()>, Https)>> = const { RefCell::new(Vec::new()) };
}

/// An upstream client whose connection pool is per thread (see the module docs). Clones share
/// the pools.
#[derive(Clone)]
pub struct PerThreadClient {
    /// Identity: the key of this client's entry in each thread's list.
    id: Arc<()>,
    connector: HttpsConnector<HttpConnector>,
    pool_idle: Duration,
}

impl PerThreadClient {
    /// Clients over `connector`, their idle connections closed after `pool_idle`.
    pub fn new(connector: HttpsConnector<HttpConnector>, pool_idle: Duration) -> Self {
        PerThreadClient {
            id: Arc::new(()),
            connector,
            pool_idle,
        }
    }

    /// Sends `request` with this thread's client (made on its first request).
    pub fn request(&self, request: Request<Sent>) -> ResponseFuture {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            let mine = Arc::as_ptr(&self.id);
            if let Some((_, client)) = clients.iter().find(|(id, _)| id.as_ptr() == mine) {
                return client.request(request);
            }
            clients.retain(|(id, _)| id.strong_count() > 0);
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(self.pool_idle)
                .build(self.connector.clone());
            let sent = client.request(request);
            clients.push((Arc::downgrade(&self.id), client));
            sent
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_rustls::HttpsConnectorBuilder;
    use hyper_util::rt::TokioIo;

    use super::*;

    fn connector() -> HttpsConnector<HttpConnector> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    }

    /// A keep-alive HTTP/1 server answering `ok`, and how many connections it accepted.
    async fn server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(http1::Builder::new().serve_connection(
                    TokioIo::new(stream),
                    service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                        ))
                    }),
                ));
            }
        });
        (addr, accepted)
    }

    async fn get(client: &PerThreadClient, addr: std::net::SocketAddr) {
        let request = Request::get(format!("http://{addr}/"))
            .body(Either::Left(
                ActivityRequestBody::passthrough(Body::empty()),
            ))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        // Reading the body to its end returns the connection to the pool.
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
    }

    #[test]
    fn each_thread_reuses_its_own_connections() {
        let server_rt = tokio::runtime::Runtime::new().unwrap();
        let (addr, accepted) = server_rt.block_on(server());
        let client = PerThreadClient::new(connector(), Duration::from_secs(60));
        let on_a_thread = |client: PerThreadClient| {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for _ in 0..3 {
                        get(&client, addr).await;
                        // Let the pool take the connection back before the next request.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            })
        };
        on_a_thread(client.clone()).join().unwrap();
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one thread's requests share a connection"
        );
        on_a_thread(client.clone()).join().unwrap();
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "another thread opens its own"
        );
    }

    #[test]
    fn clients_of_dropped_gateways_are_pruned() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (addr, _) = server().await;
            let first = PerThreadClient::new(connector(), Duration::from_secs(60));
            get(&first, addr).await;
            drop(first);
            let second = PerThreadClient::new(connector(), Duration::from_secs(60));
            get(&second, addr).await;
            CLIENTS.with(|c| assert_eq!(c.borrow().len(), 1, "the dropped one's pool is gone"));
        });
    }
}
