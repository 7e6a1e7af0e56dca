//! [`WriterGuard`]: the end of the writer, which a program must not forget.

use std::time::Duration;

use super::{ActivityWriter, WriterStats};

/// The writer's end, returned by [`ActivityLayer::pair`](crate::ActivityLayer::pair): keep it
/// until the server has stopped, then [`shutdown`](Self::shutdown) drains what is queued.
///
/// Records are batched in the background, so a program that exits without draining loses the
/// last batch. The guard makes that step visible: it is `#[must_use]`, and dropping it without
/// a shutdown logs a warning naming the records still queued (they are still written while
/// the runtime lives, but nothing waits for them). The shape is `tracing-appender`'s
/// `WorkerGuard`; its drain is async because the writer is a Tokio task.
///
/// ```
/// use std::time::Duration;
/// use tower_activity::ActivityLayer;
/// use tower_activity::sink::MemorySink;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sink = MemorySink::new();
/// let (layer, writer) = ActivityLayer::pair(sink.clone());
/// // … serve with `layer` until a shutdown signal …
/// # let _ = layer;
/// let stats = writer.shutdown(Duration::from_secs(10)).await;
/// assert_eq!(stats.failed, 0);
/// # }
/// ```
#[must_use = "drain the writer with `.shutdown(deadline).await` when the server stops, or the last records are lost"]
#[derive(Debug)]
pub struct WriterGuard {
    writer: ActivityWriter,
    drained: bool,
}

impl WriterGuard {
    /// A guard for `writer`.
    pub fn new(writer: ActivityWriter) -> Self {
        WriterGuard {
            writer,
            drained: false,
        }
    }

    /// The writer: `stats()`, `flush()`, `record(…)`.
    pub fn writer(&self) -> &ActivityWriter {
        &self.writer
    }

    /// Stops taking records and writes what is queued, waiting at most `deadline`; returns
    /// the final counters (see [`ActivityWriter::shutdown`]).
    pub async fn shutdown(mut self, deadline: Duration) -> WriterStats {
        self.drained = true;
        self.writer.shutdown(deadline).await
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if self.drained || self.writer.is_closed() {
            return;
        }
        let queued = self.writer.stats().queue_depth;
        tracing::warn!(
            queued,
            "WriterGuard dropped without shutdown: {queued} activity record(s) still queued; \
             call `WriterGuard::shutdown(deadline).await` before the program exits"
        );
    }
}
