//! [`Settlement`]: a one-shot hook that hands the finished record of one request to whoever
//! put it into the request extensions — an outer layer that must act on the exact record
//! (a budget settling its reservation, a quota, a billing hook).
//!
//! The outer layer inserts a `Settlement` into the request's extensions; the
//! [`ActivityLayer`](crate::ActivityLayer) takes it out when the request enters (so a second
//! activity layer further in never sees it) and completes it with the record exactly once,
//! whatever way the exchange ends, just before the record goes to the writer. A settlement
//! nobody completes — no activity layer inside, or a request dropped before it reached one —
//! is released when its last clone is dropped.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::record::ActivityRecord;

/// What a [`Settlement`] does with the record of its request.
///
/// Exactly one of the two methods is called, once. Both run on the request path (inside a
/// response body's poll, or a drop): they must not block — hand the work to a task.
pub trait Settle: Send + 'static {
    /// The [`ActivityLayer`](crate::ActivityLayer) made the request's record (called before
    /// the record is handed to the writer).
    fn settle(self: Box<Self>, record: &ActivityRecord);

    /// No record will come: the settlement was dropped without being completed (no activity
    /// layer inside the one that inserted it, or the request never reached one).
    fn release(self: Box<Self>);
}

/// A one-shot hook that receives the finished record of one request; put it into the request
/// extensions (see the module docs and [`Settle`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::{Arc, Mutex};
/// use tower::{Service, ServiceExt, service_fn};
/// use tower_activity::{ActivityLayer, ActivityRecord, Settle, Settlement};
/// use tower_activity::sink::MemorySink;
///
/// struct Costs(Arc<Mutex<Vec<String>>>);
/// impl Settle for Costs {
///     fn settle(self: Box<Self>, record: &ActivityRecord) {
///         self.0.lock().unwrap().push(format!("settled {:?}", record.outcome));
///     }
///     fn release(self: Box<Self>) {
///         self.0.lock().unwrap().push("released".into());
///     }
/// }
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let inner = service_fn(|_req: http::Request<tower_activity::ActivityRequestBody<String>>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// });
/// let mut service = tower::ServiceBuilder::new()
///     .layer(ActivityLayer::new(MemorySink::new()))
///     .service(inner);
/// let mut request = http::Request::new(String::new());
/// request.extensions_mut().insert(Settlement::new(Costs(seen.clone())));
/// let response = service.ready().await.unwrap().call(request).await.unwrap();
/// drop(response); // the (empty) body has ended: the record was made when the head arrived
/// assert_eq!(*seen.lock().unwrap(), ["settled Ok"]);
///
/// drop(Settlement::new(Costs(seen.clone()))); // nobody completed it
/// assert_eq!(seen.lock().unwrap()[1], "released");
/// # }
/// ```
#[derive(Clone)]
pub struct Settlement {
    // Clone because request extensions must be; the hook runs once, for whichever clone
    // settles first, or on the drop of the last clone.
    inner: Arc<Pending>,
}

struct Pending(Mutex<Option<Box<dyn Settle>>>);

impl Settlement {
    /// A settlement that hands the record to `hook`.
    pub fn new(hook: impl Settle) -> Self {
        Settlement {
            inner: Arc::new(Pending(Mutex::new(Some(Box::new(hook))))),
        }
    }

    /// Completes the settlement with `record`; `false` when it was already completed.
    pub fn settle(&self, record: &ActivityRecord) -> bool {
        match self.inner.take() {
            Some(hook) => {
                hook.settle(record);
                true
            }
            None => false,
        }
    }

    /// Whether neither [`settle`](Self::settle) nor a release has run yet.
    pub fn is_pending(&self) -> bool {
        self.inner.0.lock().map(|g| g.is_some()).unwrap_or(false)
    }
}

impl Pending {
    fn take(&self) -> Option<Box<dyn Settle>> {
        // A hook that panicked while another clone held the lock leaves nothing to run.
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let hook = match self.0.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(hook) = hook {
            hook.release();
        }
    }
}

impl fmt::Debug for Settlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settlement")
            .field("pending", &self.is_pending())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Count {
        settled: AtomicUsize,
        released: AtomicUsize,
    }
    struct Hook(Arc<Count>);
    impl Settle for Hook {
        fn settle(self: Box<Self>, _: &ActivityRecord) {
            self.0.settled.fetch_add(1, Ordering::SeqCst);
        }
        fn release(self: Box<Self>) {
            self.0.released.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn settles_once_across_clones_and_never_releases_after() {
        let count = Arc::new(Count::default());
        let s = Settlement::new(Hook(count.clone()));
        let copy = s.clone();
        let record = ActivityRecord::new(RecordKind::Request);
        assert!(copy.settle(&record));
        assert!(!s.settle(&record));
        assert!(!s.is_pending());
        drop((s, copy));
        assert_eq!(count.settled.load(Ordering::SeqCst), 1);
        assert_eq!(count.released.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_last_clone_dropped_releases() {
        let count = Arc::new(Count::default());
        let s = Settlement::new(Hook(count.clone()));
        let copy = s.clone();
        drop(s);
        assert_eq!(count.released.load(Ordering::SeqCst), 0);
        drop(copy);
        assert_eq!(count.released.load(Ordering::SeqCst), 1);
        assert_eq!(count.settled.load(Ordering::SeqCst), 0);
    }
}
