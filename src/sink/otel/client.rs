//! The HTTP client the OTLP exporters send through: hyper on the sink's Tokio runtime, and
//! the status of each export's last response for the writer's retry decision.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use tokio::runtime::Handle;

tokio::task_local! {
    /// The HTTP status of the last response an export received, when it runs in
    /// [`with_status`].
    static LAST_STATUS: Cell<Option<u16>>;
}

/// Sends through `inner` on the caller's Tokio runtime when there is one (the writer's task),
/// else on `runtime`: the SDK's periodic metric reader exports from a thread of its own, where
/// hyper, which needs Tokio, could not run.
#[derive(Clone)]
pub(super) struct RuntimeClient {
    pub(super) inner: Arc<dyn HttpClient>,
    pub(super) runtime: Handle,
}

impl fmt::Debug for RuntimeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeClient")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let response = if Handle::try_current().is_ok() {
            self.inner.send_bytes(request).await
        } else {
            let inner = Arc::clone(&self.inner);
            self.runtime
                .spawn(async move { inner.send_bytes(request).await })
                .await
                .map_err(|e| Box::new(e) as HttpError)?
        };
        if let Ok(r) = &response {
            // Outside `with_status` there is nobody to tell.
            let _ = LAST_STATUS.try_with(|s| s.set(Some(r.status().as_u16())));
        }
        response
    }
}

/// Runs an export; returns its output and the HTTP status of the last response it got (none:
/// no answer came, e.g. the connection was refused).
///
/// The exporter reports every failure as a message "for logging purposes only", so the
/// status is read here, where the response passes, rather than parsed out of the message.
pub(super) async fn with_status<F: Future>(export: F) -> (F::Output, Option<u16>) {
    LAST_STATUS
        .scope(Cell::new(None), async {
            let out = export.await;
            (out, LAST_STATUS.with(Cell::get))
        })
        .await
}
