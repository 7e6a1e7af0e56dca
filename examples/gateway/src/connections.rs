//! [`ConnectionThreads`]: threads that each run a single-threaded Tokio runtime, over which
//! [`serve_with`](crate::serve_with) spreads the accepted connections.
//!
//! Why: with one multi-threaded runtime, the two workers of a 2-CPU machine share Tokio's
//! timer wheel (every request arms and clears several timers: the header, body and upstream
//! bounds) and glibc's allocator arenas (a connection task stolen by the other worker frees
//! there what it allocated here). Profiled at c=8 (`perf record -e syscalls:sys_enter_futex`,
//! BENCHMARKS.md, "Where the layer-off tail comes from"), about two requests in a hundred met
//! one of those locks held by the other worker; when that worker had just been preempted (two
//! CPUs shared with the load generator and the upstream), the request slept until it ran
//! again — a scheduler period, milliseconds: the gateway's own p99 tail. A connection that
//! lives on one thread with its own runtime has its timers on that runtime's wheel and frees
//! its memory where it allocated it, so the two workers no longer meet on a lock. The cost is
//! Tokio's work stealing: a connection stays on its thread, so a thread with more work than
//! the others cannot hand some of it over; [`ConnectionThreads::pick`] gives each new
//! connection to the thread serving the fewest.
//!
//! Each thread also keeps one timer pending (`pace`): Tokio wakes a runtime's I/O driver
//! whenever a timer is registered earlier than the driver's next planned wake-up, even from the
//! runtime's own running thread — a write to its eventfd and one more `epoll_wait`, for two
//! requests in three at c=8 (BENCHMARKS.md, "A timer kept pending on each connection thread").
//!
//! Tasks a request spawns (the upstream client's connection tasks, the budget's batches) run
//! on the thread that spawned them. The threads run until the [`ConnectionThreads`] (every
//! clone) is dropped, which must wait until everything they run is done — in the binary, the
//! end of `main`, after the gateway's shutdown.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Threads with a single-threaded runtime each (see the module docs). Clones share them.
#[derive(Clone)]
pub struct ConnectionThreads {
    inner: Arc<Inner>,
}

struct Inner {
    threads: Vec<Thread>,
}

struct Thread {
    handle: Handle,
    /// Connections this thread serves now.
    open: Arc<AtomicUsize>,
    /// Dropped with the last clone: the thread's runtime returns and shuts down.
    _stop: oneshot::Sender<()>,
}

/// One connection counted on its thread until dropped.
#[derive(Debug)]
pub struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionThreads {
    /// Starts `n` threads (at least one), named `gateway-conn-<i>`, each with a
    /// single-threaded runtime with every driver on.
    ///
    /// ```
    /// let threads = gateway::ConnectionThreads::start(2).unwrap();
    /// assert_eq!(threads.len(), 2);
    /// let (handle, _counted) = threads.pick();
    /// let answer = std::thread::spawn(move || handle.block_on(async { 6 * 7 }));
    /// assert_eq!(answer.join().unwrap(), 42);
    /// ```
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("gateway-conn-{i}"))
                .spawn(move || {
                    // Runs the connections spawned onto `handle` until every clone is gone.
                    runtime.block_on(async {
                        tokio::select! {
                            _ = stopped => {}
                            never = pace() => match never {},
                        }
                    });
                })?;
            threads.push(Thread {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(ConnectionThreads {
            inner: Arc::new(Inner { threads }),
        })
    }

    /// How many threads there are.
    pub fn len(&self) -> usize {
        self.inner.threads.len()
    }

    /// Never: there is at least one thread ([`ConnectionThreads::start`]).
    pub fn is_empty(&self) -> bool {
        self.inner.threads.is_empty()
    }

    /// The runtime of the thread serving the fewest connections, and the new connection
    /// counted there until the [`Counted`] is dropped.
    pub fn pick(&self) -> (Handle, Counted) {
        let thread = self
            .inner
            .threads
            .iter()
            .min_by_key(|t| t.open.load(Ordering::Relaxed))
            .expect("at least one thread");
        thread.open.fetch_add(1, Ordering::Relaxed);
        (thread.handle.clone(), Counted(thread.open.clone()))
    }

    /// Connections each thread serves now, in thread order.
    pub fn open(&self) -> Vec<usize> {
        self.inner
            .threads
            .iter()
            .map(|t| t.open.load(Ordering::Relaxed))
            .collect()
    }
}

/// How soon the timer [`pace`] keeps pending is due: sooner than every timer a request arms
/// (the shortest default is 10 s, `REQUEST_BODY_IDLE_SECS`: [`Limits`](crate::limits::Limits)).
const PACE: Duration = Duration::from_secs(1);

/// Keeps a timer due within [`PACE`] on the current runtime's wheel, forever.
///
/// Tokio 1.54's timer driver wakes the I/O driver (an eventfd write, then an `epoll_wait`
/// that returns at once) whenever a timer is registered with a deadline before the wake-up it
/// planned when it last parked — and with no timer pending it planned none, so the first
/// timer of nearly every request paid it, on the thread that was already awake
/// (tokio-rs/tokio#5207; the fix, tokio-rs/tokio#8383, is not released). With this timer
/// pending, the driver always plans to wake within [`PACE`], and a request's timers, all due
/// later, are registered without waking anything. The cost: one timer firing per [`PACE`].
async fn pace() -> std::convert::Infallible {
    loop {
        tokio::time::sleep(PACE).await;
    }
}

impl fmt::Debug for ConnectionThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionThreads")
            .field("open", &self.open())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_goes_to_the_least_busy_thread() {
        let threads = ConnectionThreads::start(3).unwrap();
        let a = threads.pick();
        let b = threads.pick();
        let c = threads.pick();
        assert_eq!(threads.open(), vec![1, 1, 1]);
        drop(b);
        assert_eq!(threads.open(), vec![1, 0, 1]);
        let d = threads.pick();
        assert_eq!(threads.open(), vec![1, 1, 1], "the freed thread is picked");
        drop((a, c, d));
        assert_eq!(threads.open(), vec![0, 0, 0]);
    }

    #[test]
    fn work_runs_on_the_threads_own_runtime_and_they_stop_with_the_last_clone() {
        let threads = ConnectionThreads::start(2).unwrap();
        let (handle, _counted) = threads.pick();
        let name = handle
            .block_on(handle.spawn(async { std::thread::current().name().map(str::to_owned) }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("gateway-conn-0"));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        handle.spawn(async move {
            // Never finishes on its own: cancelled when the runtime shuts down.
            struct Dropped(std::sync::mpsc::Sender<()>);
            impl Drop for Dropped {
                fn drop(&mut self) {
                    let _ = self.0.send(());
                }
            }
            let _d = Dropped(done_tx);
            std::future::pending::<()>().await;
        });
        let clone = threads.clone();
        drop(threads);
        assert!(
            done_rx
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "a clone still holds the threads"
        );
        drop(clone);
        done_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the runtime shut down and dropped its tasks");
    }

    /// How often a current-thread runtime returns from parking while a remote thread sends it
    /// `sends` messages, each of which makes it register a 10 s timer; with `pace` beside.
    fn unparks_per_message(pace: bool) -> f64 {
        use std::sync::atomic::AtomicU64;
        let unparks = Arc::new(AtomicU64::new(0));
        let counter = unparks.clone();
        let runtime = Builder::new_current_thread()
            .enable_all()
            .on_thread_unpark(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let sends = 100;
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            for _ in 0..sends {
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let start = runtime.block_on(async {
            let work = async {
                let mut start = None;
                while rx.recv().await.is_some() {
                    start.get_or_insert(unparks.load(Ordering::Relaxed));
                    // Registered on its first poll, as a request's header timeout is.
                    let timer = tokio::time::sleep(Duration::from_secs(10));
                    tokio::pin!(timer);
                    assert!(futures_util::poll!(timer.as_mut()).is_pending());
                }
                start.unwrap()
            };
            if pace {
                tokio::select! {
                    start = work => start,
                    never = super::pace() => match never {},
                }
            } else {
                work.await
            }
        });
        sender.join().unwrap();
        (unparks.load(Ordering::Relaxed) - start) as f64 / sends as f64
    }

    #[test]
    fn a_pending_timer_spares_each_request_timer_a_wake_up() {
        let without = unparks_per_message(false);
        let with = unparks_per_message(true);
        // Without: the message's own wake-up, then the one the new timer causes. If this
        // fails because `without` is near 1, Tokio no longer wakes its driver for a timer
        // registered on its own thread (tokio-rs/tokio#8383): `pace` can go.
        assert!(
            without >= 1.7,
            "without pace: {without:.2} unparks per message"
        );
        assert!(with <= 1.3, "with pace: {with:.2} unparks per message");
    }

    #[test]
    fn zero_means_one() {
        assert_eq!(ConnectionThreads::start(0).unwrap().len(), 1);
    }
}
