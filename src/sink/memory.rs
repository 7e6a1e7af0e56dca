//! [`MemorySink`]: records kept in memory, for tests and demos.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use uuid::Uuid;

use super::{ActivitySink, SinkError};
use crate::record::ActivityRecord;

/// Keeps every record in memory, in write order, once per `id`.
///
/// Clones share the same storage: hand one clone to the writer and read the records through
/// another. Like a real store with a primary key on `id`, writing a record whose `id` is already
/// stored keeps the first copy, so retried batches never duplicate rows. Memory grows without
/// bound; use it for tests, demos and short-lived tools.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    records: Vec<ActivityRecord>,
    ids: HashSet<Uuid>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the stored records, in the order they were first written.
    pub fn records(&self) -> Vec<ActivityRecord> {
        self.lock().records.clone()
    }

    /// How many distinct records are stored.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().records.is_empty()
    }

    /// Forgets every stored record (and its `id`).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.records.clear();
        inner.ids.clear();
    }

    /// Runs `f` over the stored records without copying them (the queries use it).
    pub(crate) fn with_records<R>(&self, f: impl FnOnce(&[ActivityRecord]) -> R) -> R {
        f(&self.lock().records)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the data consistent (each push is
        // paired with its id insert below), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl ActivitySink for MemorySink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        let mut inner = self.lock();
        for record in records {
            if inner.ids.insert(record.id) {
                inner.records.push(record.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;

    #[tokio::test]
    async fn writing_the_same_ids_twice_keeps_one_copy() {
        let sink = MemorySink::new();
        let a = ActivityRecord::new(RecordKind::Request);
        let b = ActivityRecord::new(RecordKind::Event);
        let mut a_again = a.clone();
        a_again.app = "changed".into();

        sink.write(&[a.clone(), b.clone()]).await.unwrap();
        sink.write(&[a_again, b.clone()]).await.unwrap();

        assert_eq!(sink.len(), 2);
        assert_eq!(
            sink.records(),
            vec![a, b],
            "first copy kept, write order kept"
        );
    }

    #[tokio::test]
    async fn clones_share_storage_and_clear_forgets_ids() {
        let sink = MemorySink::new();
        let reader = sink.clone();
        let r = ActivityRecord::new(RecordKind::Request);
        sink.write(std::slice::from_ref(&r)).await.unwrap();
        assert_eq!(reader.len(), 1);

        reader.clear();
        assert!(sink.is_empty());
        sink.write(&[r]).await.unwrap();
        assert_eq!(reader.len(), 1, "a cleared id can be stored again");
    }
}
