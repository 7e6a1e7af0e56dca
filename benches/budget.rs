//! What one budget admission costs, per store (`cargo bench --bench budget`).
//!
//! - `budget_store/{memory,postgres,redis}/{admit,settle}`: the store calls alone — `admit`
//!   then `settle` of one request charged to four counters, as the gateway charges a user
//!   (balance, day, month, minute; the minute capped on requests, so every admission is
//!   decided on a cap), each call timed on its own: the admission is what a request waits
//!   for, the settlement runs on a task after its record is made.
//! - `budget_layer/{activity_only,memory,postgres,redis}`: the 1 KB JSON chat exchange of
//!   `benches/layer.rs` through `ActivityLayer` (no-op sink) alone, then with `BudgetLayer`
//!   outside it, configured as above. Each iteration waits for its settlement to reach the
//!   store ([`BudgetLayer::flush`]), so reserve, call and settle are all in the figure; the
//!   difference to `activity_only` is what the budget adds per request.
//!
//! PostgreSQL is `DATABASE_URL` (a database of its own, dropped at the end), Redis `REDIS_URL`
//! (a key prefix of its own, deleted at the end); either unreachable fails the bench, naming
//! the variable. The gateway's SQLite ledger decides admissions and settlements in a
//! `MemoryBudgetStore` (no database call per request), so its figure is the memory row.
//! Figures go to BENCHMARKS.md, "Budgets".

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use rust_decimal::Decimal;
use testkit::budget;
use testkit::budget::redis::TestPrefix;
use testkit::storage::postgres::TestDb;
use testkit::workload::{self, layered};
use tokio::runtime::Runtime;
use tower::Layer;
use tower_activity::budget::{
    Admission, BudgetLayer, BudgetStore, Check, CounterKey, Limits, MemoryBudgetStore, Metric,
    PostgresBudgetStore, Usage, Window,
};
use tower_activity::sink::{NoopSink, TableNames};
use tower_activity::{ActivityLayer, Attribution};

const USER: &str = "bench";

/// The gateway's windows for one user: balance, day, month, minute.
const WINDOWS: [Window; 4] = [Window::Total, Window::Day, Window::Month, Window::Minute];

/// Requests per minute: a cap every admission is checked against, never reached.
fn rpm() -> Limits {
    Limits::none().with(Metric::Requests, Some(Decimal::from(1_000_000_000_i64)))
}

/// One request's admission, as the layer makes it for the gateway's user.
fn admission() -> Admission {
    let now = Utc::now();
    // The layer's estimate of the JSON workload's request: 11 input tokens (42 characters)
    // and the default 4096 output tokens of gpt-4o-mini.
    let estimate = Usage {
        spend: Decimal::new(245_925, 8),
        tokens: 4_107,
        requests: 1,
    };
    Admission {
        id: uuid::Uuid::now_v7(),
        checks: WINDOWS
            .into_iter()
            .map(|w| Check {
                counter: CounterKey::at(format!("user:{USER}"), w, now),
                estimate,
                defaults: if w == Window::Minute {
                    rpm()
                } else {
                    Limits::none()
                },
            })
            .collect(),
    }
}

/// What the request used (the workload's usage: 120 input and 170 output tokens).
fn used() -> Usage {
    Usage {
        spend: Decimal::new(12, 5),
        tokens: 290,
        requests: 1,
    }
}

/// The stores by name.
type Stores = Vec<(&'static str, Arc<dyn BudgetStore>)>;

/// The three stores, each granted the credit; the database and the key space they use.
fn stores(rt: &Runtime) -> (Stores, TestDb, TestPrefix) {
    rt.block_on(async {
        let db = TestDb::create().await;
        let postgres = PostgresBudgetStore::from_pool(db.pool(4).await, TableNames::new())
            .await
            .expect("the budget tables on DATABASE_URL");
        let space = TestPrefix::new();
        let redis = space.store().await.with_timeout(Duration::from_secs(2));
        let stores: Stores = vec![
            ("memory", Arc::new(MemoryBudgetStore::new())),
            ("postgres", Arc::new(postgres)),
            ("redis", Arc::new(redis)),
        ];
        for (_, store) in &stores {
            budget::grant(store.as_ref(), USER, Decimal::from(1_000_000)).await;
        }
        (stores, db, space)
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (stores, db, space) = stores(&rt);

    // Each iteration admits then settles one request; `admit` times the first call (what the
    // request waits for), `settle` the second (done on a task after the record is made).
    let mut group = c.benchmark_group("budget_store");
    for (name, store) in &stores {
        for (part, admit_part) in [("admit", true), ("settle", false)] {
            group.bench_function(format!("{name}/{part}"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut timed = Duration::ZERO;
                        for _ in 0..iters {
                            let admission = admission();
                            let start = Instant::now();
                            black_box(store.admit(&admission).await.expect("admitted"));
                            if admit_part {
                                timed += start.elapsed();
                            }
                            let start = Instant::now();
                            black_box(store.settle(&admission, &used()).await.expect("settled"));
                            if !admit_part {
                                timed += start.elapsed();
                            }
                        }
                        timed
                    })
                })
            });
        }
    }
    group.finish();

    let w = workload::json_openai_chat();
    let activity = rt.block_on(async {
        ActivityLayer::builder(NoopSink)
            .attribution(|_| Some(Attribution::user(USER)))
            .build()
    });
    let mut group = c.benchmark_group("budget_layer");
    let service = activity.layer(w.upstream());
    group.bench_function("activity_only", |b| {
        b.iter(|| rt.block_on(async { black_box(layered(&service, &w).await) }))
    });
    for (name, store) in &stores {
        let budget = rt.block_on(async {
            budget::gateway_shape(BudgetLayer::builder_shared(store.clone()), USER)
                .events(activity.events())
                .build()
                .expect("a valid budget")
        });
        let service = budget.layer(activity.layer(w.upstream_for()));
        group.bench_function(*name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let body = layered(&service, &w).await;
                    budget.flush().await;
                    black_box(body)
                })
            })
        });
        assert_eq!(budget.stats().settle_failed, 0, "{name}: every settlement");
        assert_eq!(budget.stats().refused, 0, "{name}: nothing refused");
    }
    group.finish();

    rt.block_on(async {
        activity.writer().shutdown(Duration::from_secs(5)).await;
        drop(stores);
    });
    // Their drops delete the bench's database and Redis keys.
    drop(db);
    drop(space);
}

fn config() -> Criterion {
    // Round trips to a server are ~10⁴ times the memory store's lock: a short, fixed window
    // per case keeps the whole bench under a minute on the shared machine.
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
