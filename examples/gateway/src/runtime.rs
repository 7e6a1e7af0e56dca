//! The gateway's Tokio runtime: multi-threaded, with the scheduler's knobs open to the
//! environment so that the c=8 tail can be measured under each setting without a rebuild.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TOKIO_WORKER_THREADS` | one per CPU | read by Tokio itself: the number of workers (`1`: no sibling to wake, BENCHMARKS.md) |
//! | `GATEWAY_EVENT_INTERVAL` | Tokio's (61) | ticks between two polls of the I/O driver by a busy worker ([`Builder::event_interval`]): lower answers new sockets sooner, higher runs more ready tasks first |
//! | `GATEWAY_GLOBAL_QUEUE_INTERVAL` | Tokio's (adaptive) | ticks between two looks at the shared injection queue ([`Builder::global_queue_interval`]) |
//! | `GATEWAY_CONNECTION_THREADS` | one per CPU | threads that serve the connections, a single-threaded runtime each ([`ConnectionThreads`]); `off`: every connection on the multi-threaded runtime |
//!
//! With connection threads the multi-threaded runtime runs only the accept loop and the
//! background tasks, on one worker unless `TOKIO_WORKER_THREADS` says otherwise.
//!
//! Tokio's `disable_lifo_slot` is only in its unstable API (`--cfg tokio_unstable`), so it is
//! not offered here.

use tokio::runtime::{Builder, Runtime};

use crate::config::{count, var};
use crate::connections::ConnectionThreads;

/// The scheduler knobs the environment sets (`None`: Tokio's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `GATEWAY_EVENT_INTERVAL`.
    pub event_interval: Option<u32>,
    /// `GATEWAY_GLOBAL_QUEUE_INTERVAL`.
    pub global_queue_interval: Option<u32>,
    /// `GATEWAY_CONNECTION_THREADS`: how many (`None`: off).
    pub connection_threads: Option<usize>,
}

impl RuntimeConfig {
    /// Reads `GATEWAY_EVENT_INTERVAL` and `GATEWAY_GLOBAL_QUEUE_INTERVAL`; `Err` names the
    /// variable.
    pub fn from_env() -> Result<Self, String> {
        Ok(RuntimeConfig {
            event_interval: count("GATEWAY_EVENT_INTERVAL")?,
            global_queue_interval: count("GATEWAY_GLOBAL_QUEUE_INTERVAL")?,
            connection_threads: connection_threads(var("GATEWAY_CONNECTION_THREADS")?)?,
        })
    }

    /// The connection threads this asks for (none when off).
    pub fn start_connection_threads(&self) -> std::io::Result<Option<ConnectionThreads>> {
        self.connection_threads
            .map(ConnectionThreads::start)
            .transpose()
    }

    /// The multi-threaded runtime with every driver on and these knobs.
    pub fn build(&self) -> std::io::Result<Runtime> {
        let mut builder = Builder::new_multi_thread();
        builder.enable_all();
        if self.connection_threads.is_some() && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            builder.worker_threads(1);
        }
        if let Some(n) = self.event_interval {
            builder.event_interval(n);
        }
        if let Some(n) = self.global_queue_interval {
            builder.global_queue_interval(n);
        }
        builder.build()
    }
}

/// `GATEWAY_CONNECTION_THREADS`'s value: unset, one per CPU; `off` or `0`, none; else a
/// whole number.
fn connection_threads(value: Option<String>) -> Result<Option<usize>, String> {
    match value.as_deref() {
        None => Ok(Some(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        )),
        Some(v) if v.eq_ignore_ascii_case("off") || v == "0" => Ok(None),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
            format!(
                "GATEWAY_CONNECTION_THREADS must be a whole number of threads or `off`, got {v:?}"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_knobs_build_a_runtime_that_runs() {
        let config = RuntimeConfig {
            event_interval: Some(7),
            global_queue_interval: Some(3),
            connection_threads: None,
        };
        let runtime = config.build().unwrap();
        assert_eq!(
            runtime.block_on(async { tokio::spawn(async { 2 + 2 }).await.unwrap() }),
            4
        );
    }

    #[test]
    fn connection_threads_default_to_one_per_cpu_and_can_be_off() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(connection_threads(None), Ok(Some(cpus)));
        assert_eq!(connection_threads(Some("off".into())), Ok(None));
        assert_eq!(connection_threads(Some("OFF".into())), Ok(None));
        assert_eq!(connection_threads(Some("0".into())), Ok(None));
        assert_eq!(connection_threads(Some("3".into())), Ok(Some(3)));
        let e = connection_threads(Some("two".into())).unwrap_err();
        assert!(
            e.contains("GATEWAY_CONNECTION_THREADS") && e.contains("\"two\""),
            "{e}"
        );
    }
}
