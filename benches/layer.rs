//! Bare service vs the same service behind `ActivityLayer` (no-op sink), for a 1 KB JSON
//! response and a 100-event stream in each wire format (one event per frame;
//! `testkit::workload`). The difference is the layer's cost per request; divided by 100 for a
//! stream, its cost per SSE event.
//!
//! `cargo bench --bench layer`; figures in BENCHMARKS.md. `benches/instructions.rs` counts
//! the instructions of the same exchanges, the figure that does not move with the machine's
//! load.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use testkit::workload::{self, bare, layered};
use tower::Layer;
use tower_activity::ActivityLayer;
use tower_activity::sink::NoopSink;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let layer = rt.block_on(async { ActivityLayer::new(NoopSink) });

    for w in workload::all() {
        let inner = w.upstream();
        let service = layer.layer(inner.clone());
        let mut group = c.benchmark_group(w.name);
        group.bench_function("bare", |b| {
            b.iter(|| rt.block_on(async { black_box(bare(&inner, &w).await) }))
        });
        group.bench_function("layered", |b| {
            b.iter(|| rt.block_on(async { black_box(layered(&service, &w).await) }))
        });
        group.finish();
    }
    rt.block_on(layer.writer().shutdown(std::time::Duration::from_secs(5)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
