//! Setting up a stream or consumer through a cluster's bad moments: JetStream answers
//! "temporarily unavailable" while its servers elect a leader (after one was lost, or at the
//! cluster's start), and a process started then should wait for the election rather than
//! exit.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::NatsError;

/// How long setting up keeps trying through [transient](NatsError::is_transient) errors.
const PATIENCE: Duration = Duration::from_secs(30);

/// The pause between two tries.
const PAUSE: Duration = Duration::from_millis(500);

/// `attempt`'s answer, tried again after [`PAUSE`] while it is a transient error and
/// [`PATIENCE`] has not run out; `what` names it in the warning each retry logs.
pub(crate) async fn patiently<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, NatsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NatsError>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt().await {
            Err(error) if error.is_transient() && Instant::now() + PAUSE < deadline => {
                tracing::warn!(%error, "{what}: trying again in {} ms", PAUSE.as_millis());
                sleep(PAUSE).await;
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind};

    use super::*;

    /// An error whose cause is a timed-out consumer request (transient), or a plain text.
    fn transient(yes: bool) -> NatsError {
        let what = "open the consumer".to_owned();
        match yes {
            true => NatsError::new(
                what,
                "check",
                ConsumerError::new(ConsumerErrorKind::TimedOut),
            ),
            false => NatsError::new(what, "check", "cause"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_tried_again_until_an_answer() {
        let tries = AtomicU32::new(0);
        let start = Instant::now();
        let answer = patiently("open", || async {
            match tries.fetch_add(1, Ordering::Relaxed) {
                0..=2 => Err(transient(true)),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 3, "the fourth try answered");
        assert_eq!(start.elapsed(), PAUSE * 3, "a pause between tries");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_transient_error_is_returned_when_patience_runs_out() {
        let tries = AtomicU32::new(0);
        let start = Instant::now();
        let answer: Result<(), _> = patiently("open", || async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err(transient(true))
        })
        .await;
        assert!(answer.unwrap_err().is_transient());
        assert!(start.elapsed() < PATIENCE, "{:?}", start.elapsed());
        assert!(
            start.elapsed() >= PATIENCE - PAUSE * 2,
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            tries.into_inner() as u128,
            PATIENCE.as_millis() / PAUSE.as_millis()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_returned_at_once() {
        let tries = AtomicU32::new(0);
        let answer: Result<(), _> = patiently("open", || async {
            tries.fetch_add(1, Ordering::Relaxed);
            Err(transient(false))
        })
        .await;
        assert!(!answer.unwrap_err().is_transient());
        assert_eq!(tries.into_inner(), 1);
    }
}
