//! `SharedPrices`: a table replaced while requests are being priced. Every record is priced
//! from one whole table (its cost and every part are that table's, and it names that table),
//! never from part of one and part of another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use testkit::billing;
use testkit::exchange::{Exchange, run};
use tower_activity::pricing::{PriceTable, SharedPrices};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityLayer, ActivityRecord};

/// gpt-5 at `k` times one set of prices, standard and priority tier, under `name`.
fn table(name: &str, k: u32) -> PriceTable {
    let p = |micro: u32| format!("{}e-07", micro * k);
    let json = format!(
        r#"{{"gpt-5": {{
            "input_cost_per_token": {}, "output_cost_per_token": {},
            "cache_read_input_token_cost": {},
            "input_cost_per_token_priority": {}, "output_cost_per_token_priority": {},
            "cache_read_input_token_cost_priority": {}
        }}}}"#,
        p(10),
        p(20),
        p(1),
        p(20),
        p(40),
        p(2)
    );
    PriceTable::from_litellm_json(&json)
        .unwrap()
        .named(name, Some("2026-12-02"))
}

const FIXTURE: &str = "openai-chat_stream_priority.sse";
const CHAT: &str = "/v1/chat/completions";

async fn priced(layer: &ActivityLayer, sink: &MemorySink, chunk: usize) -> ActivityRecord {
    let before = sink.records().len();
    run(
        layer,
        Exchange::new(CHAT, billing::fixture(FIXTURE), true).chunk(chunk),
    )
    .await;
    layer.writer().flush().await;
    sink.records().remove(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_is_priced_from_one_whole_table_while_tables_are_swapped() {
    // The record each table gives on its own.
    let mut reference = Vec::new();
    for t in [table("A", 1), table("B", 3)] {
        let sink = MemorySink::new();
        let layer = ActivityLayer::builder(sink.clone()).prices(t).build();
        reference.push(priced(&layer, &sink, 0).await);
    }
    let [a, b] = [&reference[0], &reference[1]];
    assert_ne!(a.cost_usd, b.cost_usd);
    assert_eq!(a.metadata["price_table"]["source"], "A");

    let prices = SharedPrices::new(table("A", 1));
    let sink = MemorySink::new();
    let layer = ActivityLayer::builder(sink.clone())
        .prices(prices.clone())
        .build();
    let done = Arc::new(AtomicBool::new(false));
    // The swapper runs on a thread of its own: as a task it could be polled once while the
    // two workers ran all 64 requests (seen in CI: one swap), which tested nothing.
    let swapper = {
        let done = done.clone();
        let tables = [Arc::new(table("A", 1)), Arc::new(table("B", 3))];
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !done.load(Ordering::Relaxed) {
                prices.replace(tables[(swaps % 2) as usize].clone());
                swaps += 1;
                std::thread::yield_now();
            }
            swaps
        })
    };
    let requests: Vec<_> = (0..64)
        .map(|i| {
            let layer = layer.clone();
            tokio::spawn(async move {
                let ex = Exchange::new(CHAT, billing::fixture(FIXTURE), true).chunk(1 + i % 61);
                run(&layer, ex).await;
            })
        })
        .collect();
    for r in requests {
        r.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 1, "the table was replaced while requests ran");
    layer.writer().flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 64);
    for r in &records {
        let want = match r.metadata["price_table"]["source"].as_str() {
            Some("A") => a,
            Some("B") => b,
            other => panic!("priced from an unnamed table: {other:?}"),
        };
        assert_eq!(
            (&r.cost_usd, &r.cost_details),
            (&want.cost_usd, &want.cost_details)
        );
    }
}
