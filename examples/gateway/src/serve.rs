//! [`serve`]: the accept loop with a graceful shutdown that has a deadline, and
//! [`shutdown_signal`].
//!
//! On the shutdown signal the listener is closed (no new connections), idle keep-alive
//! connections close, and requests in flight — streams included — run on until they end or
//! the grace period passes. Past it, the connections still open are aborted: their response
//! bodies are dropped, so the activity layer records each unfinished request as `cancelled`.
//! Either way every request has its record in the writer's queue when `serve` returns; the
//! caller then drains the writer (`ActivityWriter::shutdown`).
//!
//! axum's own `serve` waits for connections without a deadline and leaves their tasks running
//! when dropped, so the gateway runs hyper's HTTP/1 connections itself, in a `JoinSet`.
//!
//! Bounds ([`ServeOptions`]): at most `max_connections` are served at once — the next waits in
//! the listen backlog until one closes — and a request's headers must arrive within
//! `header_timeout`. Each request carries its peer's address (`ConnectInfo<SocketAddr>`),
//! which the registration limit keys on.
//!
//! Where ([`ServeOptions::threads`]): with [`ConnectionThreads`], each connection is served on
//! the thread serving the fewest, on that thread's own runtime (the gateway binary's default:
//! see `connections.rs`); without, on the runtime that runs `serve_with`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::connections::ConnectionThreads;
use crate::repoll::Repoll;

/// How [`serve_with`] serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may run on after the shutdown signal.
    pub grace: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// The time a request's headers may take.
    pub header_timeout: Duration,
    /// The threads connections are served on, one single-threaded runtime each
    /// ([`ConnectionThreads`]); `None`: on the runtime that runs `serve_with`.
    pub threads: Option<ConnectionThreads>,
}

impl ServeOptions {
    /// `grace`, with the default bounds of [`Limits`](crate::Limits).
    pub fn with_grace(grace: Duration) -> Self {
        let limits = crate::Limits::default();
        ServeOptions {
            grace,
            max_connections: limits.max_connections,
            header_timeout: limits.header_timeout,
            threads: None,
        }
    }
}

/// How the server ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections served in all.
    pub connections: u64,
    /// Connections still busy when the grace period ended, aborted.
    pub aborted: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains as the module docs say;
/// the default bounds ([`ServeOptions::with_grace`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> ServeReport {
    serve_with(listener, app, shutdown, ServeOptions::with_grace(grace)).await
}

/// Waits for a free connection slot, then for a connection.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (
    OwnedSemaphorePermit,
    std::io::Result<(TcpStream, SocketAddr)>,
) {
    let permit = slots
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    (permit, listener.accept().await)
}

/// [`serve`] with `options`.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> ServeReport {
    let grace = options.grace;
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut report = ServeReport::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            (permit, accepted) = accept(&listener, &slots) => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                report.connections += 1;
                let (app, stop) = (app.clone(), stop_rx.clone());
                let header_timeout = options.header_timeout;
                let serve = move |stream| connection(stream, peer, app, header_timeout, stop, permit);
                match &options.threads {
                    None => {
                        connections.spawn(serve(stream));
                    }
                    Some(threads) => {
                        // The socket leaves this runtime's I/O driver here and joins its
                        // thread's there.
                        let stream = match stream.into_std() {
                            Ok(stream) => stream,
                            Err(e) => {
                                tracing::warn!("cannot hand a connection to its thread: {e}");
                                continue;
                            }
                        };
                        let (handle, counted) = threads.pick();
                        connections.spawn_on(
                            async move {
                                let _counted = counted;
                                match TcpStream::from_std(stream) {
                                    Ok(stream) => serve(stream).await,
                                    Err(e) => tracing::warn!("cannot serve a connection: {e}"),
                                }
                            },
                            &handle,
                        );
                    }
                }
            }
            // Reap finished connections so the set does not grow with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!("waiting up to {grace:?} for {open} open connection(s)");
    }
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        report.aborted = connections.len();
        tracing::warn!(
            "{} connection(s) still busy after {grace:?}: aborting them (their requests are recorded as cancelled)",
            report.aborted
        );
        connections.abort_all();
        // Joining waits until each aborted task has dropped its connection, and with it the
        // response bodies whose drop records the request.
        while connections.join_next().await.is_some() {}
    }
    report
}

/// Serves one connection with hyper's HTTP/1 until it closes, or until `stop` turns true,
/// then shuts it down gracefully (the request in flight runs on).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    // `Repoll`: the activity layer reads request bodies inside this task, and hyper's body
    // channel then wakes the task that is running (see repoll.rs).
    let service = app.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let service = TowerToHyperService::new(service);
    Repoll::new(async move {
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|stop| *stop) => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    })
    .await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
