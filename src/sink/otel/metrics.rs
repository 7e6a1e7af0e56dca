//! The GenAI metrics of the records an [`OtelSink`](super::OtelSink) exported: token usage,
//! operation duration and time to first token (histograms), and the cost (a counter).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, ObservableCounter};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::names::*;
use super::span::{error_type, operation, provider_name};
use crate::record::{ActivityRecord, RecordKind};

/// Bucket boundaries the GenAI conventions advise for `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// … for `gen_ai.client.operation.duration` (seconds).
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// … for `gen_ai.server.time_to_first_token` (seconds).
const TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The most (model, provider) pairs the cost counter keeps apart; later ones add to model
/// `other`. (The histograms are bounded by the SDK's own cardinality limit.)
pub(super) const MAX_COST_SERIES: usize = 1000;

/// Exact cost sums by (model, provider name).
type CostSums = Arc<Mutex<HashMap<(String, String), Decimal>>>;

pub(super) struct Instruments {
    tokens: Histogram<u64>,
    duration: Histogram<f64>,
    ttft: Histogram<f64>,
    cost: CostSums,
    // Keeps the callback registered.
    _cost_counter: ObservableCounter<f64>,
}

impl Instruments {
    pub(super) fn new(meter: &Meter) -> Instruments {
        let cost = CostSums::default();
        let sums = Arc::clone(&cost);
        Instruments {
            tokens: meter
                .u64_histogram(GEN_AI_CLIENT_TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Input and output tokens of each request")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            duration: meter
                .f64_histogram(GEN_AI_CLIENT_OPERATION_DURATION)
                .with_unit("s")
                .with_description("Request start to the end of the response body")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            ttft: meter
                .f64_histogram(GEN_AI_SERVER_TIME_TO_FIRST_TOKEN)
                .with_unit("s")
                .with_description("Streams: request start to the first output")
                .with_boundaries(TTFT_BUCKETS.to_vec())
                .build(),
            // Observed from exact sums, so the exported total is the exact total rounded once,
            // not a float sum that drifts with every addition.
            _cost_counter: meter
                .f64_observable_counter(ACTIVITY_COST)
                .with_unit("USD")
                .with_description("Cost of the requests, by model and provider")
                .with_callback(move |observer| {
                    let sums = sums.lock().unwrap_or_else(|e| e.into_inner());
                    for ((model, provider), sum) in sums.iter() {
                        let attributes = [
                            KeyValue::new(GEN_AI_REQUEST_MODEL, model.clone()),
                            KeyValue::new(GEN_AI_PROVIDER_NAME, provider.clone()),
                        ];
                        observer.observe(sum.to_f64().unwrap_or(f64::MAX), &attributes);
                    }
                })
                .build(),
            cost,
        }
    }

    /// Adds the records of a batch the collector accepted.
    pub(super) fn record(&self, records: &[ActivityRecord]) {
        for r in records.iter().filter(|r| r.kind == RecordKind::Request) {
            let mut attributes = Vec::with_capacity(5);
            if let Some(op) = operation(r) {
                attributes.push(KeyValue::new(GEN_AI_OPERATION_NAME, op));
            }
            let provider = r.provider.as_deref().map(provider_name);
            if let Some(provider) = &provider {
                attributes.push(KeyValue::new(GEN_AI_PROVIDER_NAME, provider.to_string()));
            }
            if let Some(model) = &r.model {
                attributes.push(KeyValue::new(GEN_AI_REQUEST_MODEL, model.clone()));
                attributes.push(KeyValue::new(GEN_AI_RESPONSE_MODEL, model.clone()));
            }
            for (kind, n) in [("input", r.input_tokens), ("output", r.output_tokens)] {
                if let Some(n) = n {
                    let mut with_type = attributes.clone();
                    with_type.push(KeyValue::new(GEN_AI_TOKEN_TYPE, kind));
                    self.tokens.record(n, &with_type);
                }
            }
            if let Some(ttft) = r.ttft_ms {
                self.ttft.record(ttft / 1000.0, &attributes);
            }
            if let Some(cost) = r.cost_usd {
                self.add_cost(
                    r.model.as_deref().unwrap_or("unknown"),
                    provider.as_deref().unwrap_or("unknown"),
                    cost,
                );
            }
            if let Some(latency) = r.latency_ms {
                if let Some(error) = error_type(r) {
                    attributes.push(KeyValue::new(ERROR_TYPE, error));
                }
                self.duration.record(latency / 1000.0, &attributes);
            }
        }
    }

    fn add_cost(&self, model: &str, provider: &str, cost: Decimal) {
        let mut sums = self.cost.lock().unwrap_or_else(|e| e.into_inner());
        let key = (model.to_owned(), provider.to_owned());
        let key = if sums.contains_key(&key) || sums.len() < MAX_COST_SERIES {
            key
        } else {
            ("other".to_owned(), provider.to_owned())
        };
        *sums.entry(key).or_default() += cost;
    }
}
