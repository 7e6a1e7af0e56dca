//! [`TracingSink`] (records as log events) and [`NoopSink`] (records discarded).

use async_trait::async_trait;

use super::{ActivitySink, SinkError};
use crate::record::ActivityRecord;

/// Emits each record as one `tracing` event at `INFO` level, target
/// [`TracingSink::TARGET`] (`tower_activity::record`), with the record's JSON in the `record`
/// field.
///
/// Useful when the logs are the store (a collector ships them on), and to watch records while
/// developing. Filter on the target to route them, e.g. `RUST_LOG=tower_activity::record=info`.
/// Never fails: there is nothing to retry.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl TracingSink {
    /// The `tracing` target of the record events.
    pub const TARGET: &'static str = "tower_activity::record";

    /// A sink that logs records.
    pub fn new() -> Self {
        TracingSink
    }
}

#[async_trait]
impl ActivitySink for TracingSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        for record in records {
            let json = serde_json::to_string(record).map_err(SinkError::permanent)?;
            ::tracing::info!(target: TracingSink::TARGET, record = %json, "activity record");
        }
        Ok(())
    }
}

/// Discards every record and reports success: measures the writer and the layer without a
/// store (benchmarks), or turns recording off.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl NoopSink {
    /// A sink that discards records.
    pub fn new() -> Self {
        NoopSink
    }
}

#[async_trait]
impl ActivitySink for NoopSink {
    async fn write(&self, _records: &[ActivityRecord]) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::sync::{Arc, Mutex};

    use ::tracing::field::{Field, Visit};
    use ::tracing::span::{Attributes, Id, Record};
    use ::tracing::{Event, Level, Metadata, Subscriber};

    use super::*;
    use crate::record::RecordKind;

    /// Target, level and `record` field of one event.
    type Seen = (String, Level, Option<String>);

    /// Keeps every event it sees.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Seen>>>);

    struct RecordField(Option<String>);

    impl Visit for RecordField {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            if field.name() == "record" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut field = RecordField(None);
            event.record(&mut field);
            let meta = event.metadata();
            self.0
                .lock()
                .unwrap()
                .push((meta.target().to_owned(), *meta.level(), field.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[tokio::test]
    async fn tracing_sink_emits_one_json_event_per_record() {
        let capture = Capture::default();
        let _guard = ::tracing::subscriber::set_default(capture.clone());
        let records = [
            ActivityRecord::new(RecordKind::Request),
            ActivityRecord::new(RecordKind::Event),
        ];

        TracingSink::new().write(&records).await.unwrap();

        let events = capture.0.lock().unwrap().clone();
        assert_eq!(events.len(), 2);
        for ((target, level, json), record) in events.iter().zip(&records) {
            assert_eq!(target, TracingSink::TARGET);
            assert_eq!(*level, Level::INFO);
            let back: ActivityRecord = serde_json::from_str(json.as_deref().unwrap()).unwrap();
            assert_eq!(&back, record);
        }
    }

    #[tokio::test]
    async fn noop_sink_accepts_everything() {
        let records = [ActivityRecord::new(RecordKind::Request)];
        assert!(NoopSink::new().write(&records).await.is_ok());
    }
}
