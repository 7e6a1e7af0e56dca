//! [`IngestStats`]: what an ingester did, counted as it goes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An ingester's counters since it started ([`Ingester::stats`](super::Ingester::stats)).
///
/// Every message received ends in exactly one of: `written` (stored, then acknowledged),
/// `rejected` (it can never be stored: terminated, logged with its id), or back to the stream
/// for redelivery (`retried` counts those, batch by batch: the sink failed or the ingester
/// stopped first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestStats {
    /// Messages received from the consumer (redeliveries included).
    pub received: u64,
    /// Records the sink stored (or already had) whose messages were then acknowledged.
    pub written: u64,
    /// Batches handed to the sink (a batch written record by record after a refusal counts
    /// once): `written / batches` is about the mean batch, what decides whether a sink takes its
    /// bulk path (`PostgresSink`'s `COPY` from 500 records).
    pub batches: u64,
    /// Received messages that JetStream had delivered before (a sink failure, an ingester
    /// that stopped or died before acknowledging, an acknowledgement that was lost).
    pub redelivered: u64,
    /// Messages handed back for redelivery (negative acknowledgement with a delay) because
    /// the sink failed transiently or timed out.
    pub retried: u64,
    /// Sink calls that failed (transiently, permanently or by timeout).
    pub sink_failures: u64,
    /// Messages that can never be stored (not a record, or refused by the sink on their
    /// own): terminated, so JetStream stops redelivering them.
    pub rejected: u64,
    /// Errors of the consumer itself (missed heartbeats, a failed pull, a consumer that had
    /// to be opened again).
    pub consumer_errors: u64,
    /// Acknowledgements that could not be sent (the message will be redelivered and the
    /// duplicate ignored by the sink).
    pub ack_failures: u64,
}

/// The live counters behind [`IngestStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) sink_failures: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) consumer_errors: AtomicU64,
    pub(crate) ack_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> IngestStats {
        IngestStats {
            received: self.received.load(Relaxed),
            written: self.written.load(Relaxed),
            batches: self.batches.load(Relaxed),
            redelivered: self.redelivered.load(Relaxed),
            retried: self.retried.load(Relaxed),
            sink_failures: self.sink_failures.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            consumer_errors: self.consumer_errors.load(Relaxed),
            ack_failures: self.ack_failures.load(Relaxed),
        }
    }
}
