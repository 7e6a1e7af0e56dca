//! [`FanOut`]: several sinks that each receive every record, independently.

use std::fmt;
use std::sync::Arc;

use super::ActivitySink;

/// Named sinks that each receive every record through a lane of their own: give it to
/// [`ActivityWriter::start`](crate::ActivityWriter::start) or
/// [`ActivityLayer::builder`](crate::ActivityLayer::builder) where one sink would go.
///
/// The writer starts one queue and one task per sink, each with the whole
/// [`WriterConfig`](crate::WriterConfig), the way OpenTelemetry runs one batch processor per
/// exporter. So a sink that is slow or down (a collector being restarted) fills, retries and
/// finally drops only in its own lane, while the database keeps every record; and each sink is
/// counted on its own ([`ActivityWriter::sink_stats`](crate::ActivityWriter::sink_stats)). A
/// record costs one clone per extra sink.
///
/// A single sink converts into a `FanOut` of one sink named `"default"`, which is what
/// `ActivityLayer::builder(sink)` does.
///
/// ```
/// use std::time::Duration;
/// use tower_activity::ActivityLayer;
/// use tower_activity::sink::{FanOut, MemorySink, TracingSink};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let database = MemorySink::new();
/// let sinks = FanOut::new()
///     .sink("database", database.clone())
///     .sink("log", TracingSink::new());
/// let (layer, writer) = ActivityLayer::builder(sinks).pair();
/// # let _ = layer;
/// let names: Vec<String> = writer.writer().sink_stats().into_iter().map(|s| s.name.to_string()).collect();
/// assert_eq!(names, ["database", "log"]);
/// writer.shutdown(Duration::from_secs(1)).await;
/// # }
/// ```
#[derive(Default)]
pub struct FanOut {
    sinks: Vec<(Arc<str>, Box<dyn ActivitySink>)>,
}

impl FanOut {
    /// The name of the sink in a `FanOut` made from a single sink.
    pub const DEFAULT_NAME: &'static str = "default";

    /// No sinks yet (a writer refuses to start over an empty `FanOut`).
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Adds a sink under `name` (the label of its counters and warnings). A name given twice
    /// replaces the earlier sink, so that each name counts one sink.
    pub fn sink(mut self, name: impl Into<Arc<str>>, sink: impl ActivitySink) -> Self {
        let name = name.into();
        self.sinks.retain(|(n, _)| *n != name);
        self.sinks.push((name, Box::new(sink)));
        self
    }

    /// The sinks' names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sinks.iter().map(|(name, _)| &**name)
    }

    /// How many sinks there are.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub(crate) fn into_sinks(self) -> Vec<(Arc<str>, Box<dyn ActivitySink>)> {
        self.sinks
    }
}

impl fmt::Debug for FanOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<S: ActivitySink> From<S> for FanOut {
    fn from(sink: S) -> Self {
        FanOut::new().sink(FanOut::DEFAULT_NAME, sink)
    }
}
