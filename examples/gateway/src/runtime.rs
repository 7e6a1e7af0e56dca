//! The gateway's Tokio runtime: multi-threaded, with the scheduler's knobs open to the
//! environment so that the c=8 tail can be measured under each setting without a rebuild.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TOKIO_WORKER_THREADS` | one per CPU | read by Tokio itself: the number of workers (`1`: no sibling to wake, BENCHMARKS.md) |
//! | `GATEWAY_EVENT_INTERVAL` | Tokio's (61) | ticks between two polls of the I/O driver by a busy worker ([`Builder::event_interval`]): lower answers new sockets sooner, higher runs more ready tasks first |
//! | `GATEWAY_GLOBAL_QUEUE_INTERVAL` | Tokio's (adaptive) | ticks between two looks at the shared injection queue ([`Builder::global_queue_interval`]) |
//!
//! Tokio's `disable_lifo_slot` is only in its unstable API (`--cfg tokio_unstable`), so it is
//! not offered here.

use tokio::runtime::{Builder, Runtime};

use crate::config::count;

/// The scheduler knobs the environment sets (`None`: Tokio's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `GATEWAY_EVENT_INTERVAL`.
    pub event_interval: Option<u32>,
    /// `GATEWAY_GLOBAL_QUEUE_INTERVAL`.
    pub global_queue_interval: Option<u32>,
}

impl RuntimeConfig {
    /// Reads `GATEWAY_EVENT_INTERVAL` and `GATEWAY_GLOBAL_QUEUE_INTERVAL`; `Err` names the
    /// variable.
    pub fn from_env() -> Result<Self, String> {
        Ok(RuntimeConfig {
            event_interval: count("GATEWAY_EVENT_INTERVAL")?,
            global_queue_interval: count("GATEWAY_GLOBAL_QUEUE_INTERVAL")?,
        })
    }

    /// The multi-threaded runtime with every driver on and these knobs.
    pub fn build(&self) -> std::io::Result<Runtime> {
        let mut builder = Builder::new_multi_thread();
        builder.enable_all();
        if let Some(n) = self.event_interval {
            builder.event_interval(n);
        }
        if let Some(n) = self.global_queue_interval {
            builder.global_queue_interval(n);
        }
        builder.build()
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
        };
        let runtime = config.build().unwrap();
        assert_eq!(
            runtime.block_on(async { tokio::spawn(async { 2 + 2 }).await.unwrap() }),
            4
        );
    }
}
