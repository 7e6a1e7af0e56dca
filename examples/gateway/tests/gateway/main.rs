//! The example gateway end to end, in-process: the gateway on an ephemeral port in front of
//! the mock upstream (the `mock-upstream` crate), driven over HTTP like a client would. One
//! test binary, one module per theme; [`harness`] starts gateways and databases.
//!
//! Every prompt is `Be brief.` (9 characters) + `Count the tokens of this prompt, please.`
//! (40): ⌈49 / 4⌉ = 13 input tokens at the mock. Its reply is 24 words (24 output tokens), or
//! the request's token limit when smaller. Costs are the embedded `PriceTable`'s.

mod billing;
mod bounds;
mod credits;
mod credits_concurrency;
mod dashboard;
mod e2e;
mod edges;
mod fleet;
mod fleet_budget;
mod fleet_rollover;
mod harness;
mod logging;
mod metrics;
mod otel;
mod prices;
mod restart;
mod routing;
mod shutdown;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use gateway::{Storage, UpstreamUrl};
use harness::{Echo, Harness, TempDb, TempPg};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use mock_upstream::wire::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tower_activity::pricing::{PriceTable, TokenUsage};
use tower_activity::{ActivityRecord, FinishReason, Outcome, RecordKind, UsageSource};

fn cost(model: &str, output: u64) -> Decimal {
    let usage = TokenUsage {
        input: INPUT,
        output,
        ..TokenUsage::default()
    };
    PriceTable::embedded()
        .cost(model, &usage)
        .unwrap_or_else(|| panic!("{model} has a price"))
}

/// A log row as a record (the legacy fields are extra members serde ignores).
fn record(row: &Value) -> ActivityRecord {
    serde_json::from_value(row.clone()).expect("a log row is an ActivityRecord")
}

/// The caller's log rows for `query` (after a flush of every sink), as records.
async fn records(gw: &Harness, key: &str, query: &str) -> Vec<ActivityRecord> {
    let page = gw.log(key, query).await;
    page["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(record)
        .collect()
}

/// The request we expect a row for.
#[derive(Debug, Clone)]
struct Sent {
    api: Api,
    stream: bool,
    output: u64,
    session: Option<String>,
}

/// Reads one frame of the body.
async fn first_frame(body: &mut hyper::body::Incoming) -> Bytes {
    loop {
        let frame = body.frame().await.expect("a frame").expect("no error");
        if let Ok(data) = frame.into_data() {
            return data;
        }
    }
}

/// Polls the log until `n` rows are there (the record of a dropped stream is made when the
/// gateway notices the client is gone).
async fn wait_for_rows(gw: &Harness, key: &str, query: &str, n: u64) -> Value {
    for _ in 0..200 {
        let page = gw.log(key, query).await;
        if page["total"].as_u64() >= Some(n) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} rows never arrived: {:#}", gw.log(key, query).await);
}
