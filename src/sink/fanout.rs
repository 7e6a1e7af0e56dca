//! [`FanOut`]: several sinks that each receive every record, independently, and observers
//! that read each record as it is taken.

use std::fmt;
use std::sync::Arc;

use super::{ActivitySink, RecordObserver};

/// Named sinks that each receive every record through a lane of their own, and named
/// [observers](RecordObserver) that read each record on the caller's thread: give it to
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
/// An observer costs no clone and no queue: it is called with `&record` before the record
/// goes to the sinks' queues (see [`RecordObserver`] for what it may do there). Use one for
/// counters in memory; use a sink for anything that does I/O. A `FanOut` may hold observers
/// only (a writer that counts and stores nothing); it needs at least one member.
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
    members: Vec<(Arc<str>, Member)>,
}

/// What a name of a [`FanOut`] stands for.
pub(crate) enum Member {
    /// Gets every record through a lane (queue, task, batches) of its own.
    Sink(Box<dyn ActivitySink>),
    /// Reads every record on the caller's thread.
    Observer(Box<dyn RecordObserver>),
}

impl FanOut {
    /// The name of the sink in a `FanOut` made from a single sink.
    pub const DEFAULT_NAME: &'static str = "default";

    /// No sinks yet (a writer refuses to start over an empty `FanOut`).
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Adds a sink under `name` (the label of its counters and warnings). A name given twice
    /// (to a sink or an observer) replaces the earlier one, so that each name counts one
    /// member.
    pub fn sink(self, name: impl Into<Arc<str>>, sink: impl ActivitySink) -> Self {
        self.add(name.into(), Member::Sink(Box::new(sink)))
    }

    /// Adds an [observer](RecordObserver) under `name` (the label of its counters and
    /// warnings, beside the sinks'): it reads every record the writer takes, on the caller's
    /// thread, before the sinks' queues get it. A name given twice (to a sink or an observer)
    /// replaces the earlier one.
    pub fn observer(self, name: impl Into<Arc<str>>, observer: impl RecordObserver) -> Self {
        self.add(name.into(), Member::Observer(Box::new(observer)))
    }

    fn add(mut self, name: Arc<str>, member: Member) -> Self {
        self.members.retain(|(n, _)| *n != name);
        self.members.push((name, member));
        self
    }

    /// The names of the sinks and observers, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(name, _)| &**name)
    }

    /// How many sinks and observers there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn into_members(self) -> Vec<(Arc<str>, Member)> {
        self.members
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ActivityRecord;
    use crate::sink::NoopSink;

    struct Nothing;

    impl RecordObserver for Nothing {
        fn observe(&self, _: &ActivityRecord) {}
    }

    #[test]
    fn a_name_counts_one_member_whichever_kind() {
        let f = FanOut::new()
            .sink("a", NoopSink)
            .observer("b", Nothing)
            .observer("a", Nothing)
            .sink("b", NoopSink);
        assert_eq!(f.names().collect::<Vec<_>>(), ["a", "b"]);
        let kinds: Vec<bool> = f
            .into_members()
            .iter()
            .map(|(_, m)| matches!(m, Member::Observer(_)))
            .collect();
        assert_eq!(kinds, [true, false], "the later member of a name wins");
    }
}
