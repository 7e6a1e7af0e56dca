//! Placeholder: the writer is being written.

use std::sync::Arc;
use std::time::Duration;

use crate::record::ActivityRecord;
use crate::sink::ActivitySink;

/// Writer tuning.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Records the queue holds before new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// Records per sink call at most.
    pub batch_size: usize,
    /// How long a partial batch waits before it is written.
    pub batch_interval: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 65_536,
            batch_size: 1_000,
            batch_interval: Duration::from_millis(100),
        }
    }
}

/// Counters of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records the sink confirmed.
    pub written: u64,
}

/// Handle to the background writer.
#[derive(Clone)]
pub struct ActivityWriter {
    _sink: Arc<dyn ActivitySink>,
}

impl ActivityWriter {
    /// Starts the writer on the current Tokio runtime.
    pub fn start(sink: impl ActivitySink, _config: WriterConfig) -> Self {
        ActivityWriter {
            _sink: Arc::new(sink),
        }
    }

    /// Enqueues a record without waiting; `false` when it was dropped.
    pub fn record(&self, _record: ActivityRecord) -> bool {
        false
    }

    /// Counters.
    pub fn stats(&self) -> WriterStats {
        WriterStats::default()
    }

    /// Waits until every record enqueued before the call was written or failed.
    pub async fn flush(&self) {}

    /// Stops accepting records and drains the queue within `deadline`.
    pub async fn shutdown(&self, _deadline: Duration) -> WriterStats {
        self.stats()
    }
}
