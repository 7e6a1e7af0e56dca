//! The activity writer's counters, one series per member of its `FanOut` (`sink="database"`,
//! `sink="otlp"`, and the observer `sink="metrics"`, whose queue is always empty), read from
//! [`ActivityWriter::sink_stats`] at each scrape. The spool's (`activity_spool_*`) are 0 for
//! a sink without one.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tower_activity::{ActivityWriter, SinkStats, WriterStats};

/// Reads the writer's counters at each scrape.
#[derive(Debug)]
pub(super) struct WriterCollector(pub(super) ActivityWriter);

/// A value of one sink's counters: a count, or seconds.
enum Value {
    Count(u64),
    Seconds(f64),
}

/// One metric of the writer: name, help, type, and its value for a sink's counters.
type Series = (
    &'static str,
    &'static str,
    MetricType,
    fn(&WriterStats) -> Value,
);

const SERIES: [Series; 13] = [
    (
        "activity_records_enqueued",
        "Activity records accepted into the sink's queue.",
        MetricType::Counter,
        |s| Value::Count(s.enqueued),
    ),
    (
        "activity_records_written",
        "Activity records the sink confirmed.",
        MetricType::Counter,
        |s| Value::Count(s.written),
    ),
    (
        "activity_records_failed",
        "Accepted activity records the sink never took (rejected, or past the shutdown deadline).",
        MetricType::Counter,
        |s| Value::Count(s.failed),
    ),
    (
        "activity_sink_retries",
        "Sink calls repeated after a transient failure or a timeout.",
        MetricType::Counter,
        |s| Value::Count(s.retried),
    ),
    (
        "activity_sink_timeouts",
        "Sink calls abandoned after the writer's sink timeout (then retried).",
        MetricType::Counter,
        |s| Value::Count(s.sink_timeouts),
    ),
    (
        "activity_batches",
        "Batches handed to the sink (a batch retried or split counts once).",
        MetricType::Counter,
        |s| Value::Count(s.batches),
    ),
    (
        "activity_batch_duration_seconds",
        "Time spent writing batches, retries and splits included.",
        MetricType::Counter,
        |s| Value::Seconds(s.batch_micros_total as f64 / 1e6),
    ),
    (
        "activity_queue_depth",
        "Activity records accepted but not yet written.",
        MetricType::Gauge,
        |s| Value::Count(s.queue_depth),
    ),
    (
        "activity_last_batch_duration_seconds",
        "Time the sink's last batch took to write.",
        MetricType::Gauge,
        |s| Value::Seconds(s.last_batch_micros as f64 / 1e6),
    ),
    (
        "activity_spool_records",
        "Activity records synced to the spool's disk (from then on a crash does not lose them).",
        MetricType::Counter,
        |s| Value::Count(s.spooled),
    ),
    (
        "activity_spool_replayed_records",
        "Activity records found in the spool at start (left by an earlier process) and written again.",
        MetricType::Counter,
        |s| Value::Count(s.replayed),
    ),
    (
        "activity_spool_dropped_records",
        "Activity records lost because the spool was at its disk bound (also counted as failed).",
        MetricType::Counter,
        |s| Value::Count(s.spool_full),
    ),
    (
        "activity_spool_bytes",
        "Bytes in the spool's files now.",
        MetricType::Gauge,
        |s| Value::Count(s.spool_bytes),
    ),
];

impl Collector for WriterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let sinks = self.0.sink_stats();
        for (name, help, kind, value) in SERIES {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for SinkStats { name, stats, .. } in &sinks {
                let labels = [("sink", &**name)];
                let family = metric.encode_family(&labels)?;
                match (kind, value(stats)) {
                    (MetricType::Gauge, Value::Count(n)) => ConstGauge::new(n).encode(family)?,
                    (MetricType::Gauge, Value::Seconds(s)) => ConstGauge::new(s).encode(family)?,
                    (_, Value::Count(n)) => ConstCounter::new(n).encode(family)?,
                    (_, Value::Seconds(s)) => ConstCounter::new(s).encode(family)?,
                }
            }
        }
        let mut dropped = encoder.encode_descriptor(
            "activity_records_dropped",
            "Activity records the sink's queue refused at once, by reason.",
            None,
            MetricType::Counter,
        )?;
        for SinkStats { name, stats, .. } in &sinks {
            for (reason, n) in [
                ("queue_full", stats.dropped_queue_full),
                ("closed", stats.dropped_closed),
            ] {
                let labels = [("sink", &**name), ("reason", reason)];
                ConstCounter::new(n).encode(dropped.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
