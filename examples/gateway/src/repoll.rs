//! [`Repoll`]: a future woken while it is being polled is polled again at once, instead of
//! being handed back to the scheduler.
//!
//! Why the gateway wraps each connection in it: hyper's HTTP/1 request-body channel wakes the
//! connection task (the body's sender) every time the body's receiver takes a chunk. The
//! activity layer reads an LLM request body in the service future, which hyper polls inside
//! that same connection task, so reading the body wakes the task that is running. Tokio
//! re-queues a task woken during its own poll as a yield and unparks an idle sibling worker to
//! look at it: a futex call and a context switch per request on a 2-vCPU box, for a task the
//! running worker would have polled next anyway (BENCHMARKS.md, "Under load"). Here that wake
//! is noticed and the connection polled again in the same turn; a wake that arrives while the
//! future is not being polled goes to the task's waker as before.
//!
//! Fairness: at most [`ROUNDS`] polls per turn. A future that keeps waking itself (hyper's
//! connection yields after 16 pipelined requests, Tokio's cooperative budget runs out) is
//! then handed to the scheduler like any yielding task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;

/// Polls of the inner future per poll of [`Repoll`] at most.
pub const ROUNDS: usize = 4;

/// The inner future is being polled.
const POLLING: u8 = 1;
/// A wake-up arrived while it was.
const WOKEN: u8 = 2;

pin_project! {
    /// `future`, polled again in the same turn when it wakes itself (see the module docs).
    pub struct Repoll<F> {
        #[pin]
        future: F,
        shared: Arc<Shared>,
        waker: Waker,
    }
}

struct Shared {
    state: AtomicU8,
    /// The waker of the task that polls the [`Repoll`].
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // While the future is polled the poller sees `WOKEN` and polls again; otherwise the
        // task must be scheduled.
        if self.state.fetch_or(WOKEN, Ordering::AcqRel) & POLLING == 0 {
            self.task.wake();
        }
    }
}

impl<F> Repoll<F> {
    /// Wraps `future`.
    pub fn new(future: F) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(0),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(shared.clone());
        Repoll {
            future,
            shared,
            waker,
        }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        this.shared.task.register(cx.waker());
        let mut inner = Context::from_waker(this.waker);
        for _ in 0..ROUNDS {
            // Clears a `WOKEN` left by a wake-up that was already passed to the task.
            this.shared.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(output) = this.future.as_mut().poll(&mut inner) {
                this.shared.state.store(0, Ordering::Release);
                return Poll::Ready(output);
            }
            // Not woken meanwhile: done until a wake-up, which now goes to the task.
            if this
                .shared
                .state
                .compare_exchange(POLLING, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
        }
        // Still waking itself: let the scheduler run the others first.
        this.shared.state.store(0, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wakes itself during its first `self_wakes` polls, then completes; keeps the last
    /// waker it was given.
    struct WakesItself {
        self_wakes: usize,
        polls: usize,
        waker: Option<Waker>,
    }

    impl Future for WakesItself {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            self.waker = Some(cx.waker().clone());
            if self.polls <= self.self_wakes {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.polls == self.self_wakes + 1 {
                // Pending without a wake-up of its own: someone else will wake it.
                return Poll::Pending;
            }
            Poll::Ready(self.polls)
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_wake_during_the_poll_is_a_second_poll_not_a_wake_up() {
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut inner = WakesItself {
            self_wakes: 1,
            polls: 0,
            waker: None,
        };
        let mut future = Box::pin(Repoll::new(&mut inner));
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "the task was not woken");
        drop(future);
        assert_eq!(inner.polls, 2, "polled again in the same turn");
    }

    #[test]
    fn a_wake_between_polls_reaches_the_task() {
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut inner = WakesItself {
            self_wakes: 0,
            polls: 0,
            waker: None,
        };
        let inner_waker = {
            let mut future = Box::pin(Repoll::new(&mut inner));
            assert!(future.as_mut().poll(&mut cx).is_pending());
            assert_eq!(count.0.load(Ordering::SeqCst), 0);
            // The future keeps running elsewhere; it is woken from outside, between polls.
            let w = future.as_mut().project().future.waker.clone().unwrap();
            w.wake_by_ref();
            assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task is woken");
            assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(2));
            w
        };
        drop(inner_waker);
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_to_the_scheduler() {
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut inner = WakesItself {
            self_wakes: usize::MAX - 1,
            polls: 0,
            waker: None,
        };
        let mut future = Box::pin(Repoll::new(&mut inner));
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "handed to the scheduler");
        drop(future);
        assert_eq!(inner.polls, ROUNDS, "at most ROUNDS polls in one turn");
    }
}
