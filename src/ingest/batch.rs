//! One batch of messages through the sink: decode, write, then acknowledge — or hand back.

use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use futures_util::future::join_all;

use super::config::IngestConfig;
use super::stats::Counters;
use crate::record::ActivityRecord;
use crate::sink::{ActivitySink, SinkError};

/// Writes `messages` through `sink` and settles each message: acknowledged once the sink has
/// stored its record, terminated when it can never be stored, handed back (negative
/// acknowledgement, with a delay growing with its deliveries) when the sink failed.
pub(super) async fn process<S: ActivitySink + ?Sized>(
    sink: &S,
    messages: Vec<Message>,
    config: &IngestConfig,
    counters: &Counters,
) {
    Counters::add(&counters.received, messages.len());
    let redelivered = messages.iter().filter(|m| deliveries(m) > 1).count();
    Counters::add(&counters.redelivered, redelivered);
    let mut records = Vec::with_capacity(messages.len());
    let mut kept = Vec::with_capacity(messages.len());
    for message in messages {
        match serde_json::from_slice::<ActivityRecord>(&message.payload) {
            Ok(record) => {
                records.push(record);
                kept.push(message);
            }
            Err(e) => {
                tracing::error!(
                    subject = %message.subject,
                    error = %e,
                    "a message on the activity stream is not a record: terminated"
                );
                settle(&[message], AckKind::Term, counters).await;
                Counters::add(&counters.rejected, 1);
            }
        }
    }
    if records.is_empty() {
        return;
    }
    Counters::add(&counters.batches, 1);
    match write(sink, &records, config).await {
        Ok(()) => {
            settle(&kept, AckKind::Ack, counters).await;
            Counters::add(&counters.written, kept.len());
        }
        Err(e) if e.is_transient() => {
            Counters::add(&counters.sink_failures, 1);
            tracing::warn!(records = records.len(), error = %e, "sink failed: handed back for redelivery");
            hand_back(&kept, config, counters).await;
        }
        Err(e) => {
            Counters::add(&counters.sink_failures, 1);
            tracing::warn!(records = records.len(), error = %e, "sink refused the batch: writing its records one by one");
            isolate(sink, &records, &kept, config, counters).await;
        }
    }
}

/// The sink call, bounded by [`IngestConfig::sink_timeout`] (a timeout is transient).
async fn write<S: ActivitySink + ?Sized>(
    sink: &S,
    records: &[ActivityRecord],
    config: &IngestConfig,
) -> Result<(), SinkError> {
    match tokio::time::timeout(config.sink_timeout, sink.write(records)).await {
        Ok(result) => result,
        Err(_) => Err(SinkError::transient(format!(
            "the sink did not answer within {:?}",
            config.sink_timeout
        ))),
    }
}

/// A batch the sink refused as a whole: each record alone, so one bad record does not hold
/// back the others; those refused alone are terminated and counted as rejected.
async fn isolate<S: ActivitySink + ?Sized>(
    sink: &S,
    records: &[ActivityRecord],
    messages: &[Message],
    config: &IngestConfig,
    counters: &Counters,
) {
    for (record, message) in records.iter().zip(messages) {
        match write(sink, std::slice::from_ref(record), config).await {
            Ok(()) => {
                settle(std::slice::from_ref(message), AckKind::Ack, counters).await;
                Counters::add(&counters.written, 1);
            }
            Err(e) if e.is_transient() => {
                Counters::add(&counters.sink_failures, 1);
                hand_back(std::slice::from_ref(message), config, counters).await;
            }
            Err(e) => {
                Counters::add(&counters.sink_failures, 1);
                tracing::error!(id = %record.id, error = %e, "the sink refused this record: terminated");
                settle(std::slice::from_ref(message), AckKind::Term, counters).await;
                Counters::add(&counters.rejected, 1);
            }
        }
    }
}

/// Negative acknowledgements with a delay: redelivered (to any ingester) after it.
pub(super) async fn hand_back(messages: &[Message], config: &IngestConfig, counters: &Counters) {
    Counters::add(&counters.retried, messages.len());
    let acks = messages.iter().map(|m| {
        let delay = backoff(config, deliveries(m));
        m.ack_with(AckKind::Nak(Some(delay)))
    });
    count_failures(join_all(acks).await, counters);
}

/// Sends `kind` for every message.
async fn settle(messages: &[Message], kind: AckKind, counters: &Counters) {
    let acks = messages.iter().map(|m| m.ack_with(kind));
    count_failures(join_all(acks).await, counters);
}

fn count_failures<E: std::fmt::Display>(results: Vec<Result<(), E>>, counters: &Counters) {
    let failed: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    if let Some(first) = failed.first() {
        tracing::warn!(failed = failed.len(), error = %first, "acknowledgements not sent: those messages will be redelivered");
        Counters::add(&counters.ack_failures, failed.len());
    }
}

/// How many times JetStream has delivered `message` (1 the first time).
fn deliveries(message: &Message) -> i64 {
    message.info().map(|i| i.delivered).unwrap_or(1)
}

/// The redelivery delay after the `delivered`-th failed delivery: the retry backoff doubled
/// each time, at most the maximum.
fn backoff(config: &IngestConfig, delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    config
        .retry_backoff
        .saturating_mul(1 << doublings)
        .min(config.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let config = IngestConfig::default()
            .with_retry_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(1));
        let delays: Vec<_> = (0..7).map(|d| backoff(&config, d).as_millis()).collect();
        assert_eq!(delays, [100, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&config, i64::MAX), Duration::from_secs(1));
    }
}
