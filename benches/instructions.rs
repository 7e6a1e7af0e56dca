//! Instructions the layer adds per JSON request and per SSE event, counted by
//! `valgrind --tool=callgrind`: the figure that does not move with the machine's load (a
//! shared 2-core box moves criterion's times by 2×; these counts repeat to a few parts in a
//! thousand).
//!
//! ```text
//! cargo bench --bench instructions                  # table + one JSON line
//! cargo bench --bench instructions -- --check       # fail when a figure grew > 5 % over the baseline
//! cargo bench --bench instructions -- --update      # rewrite benches/instructions.json
//! ```
//!
//! For each workload of `testkit::workload` (the exchanges `benches/layer.rs` times), this
//! binary runs itself under callgrind as a child that sends the exchange `n` times through the
//! bare upstream or through the layer (no-op sink), for two values of `n`. The difference of the
//! two totals divided by the difference of the `n`s is the cost of one exchange, without the
//! process's start-up and one-time costs (the price table's first parse, the runtime); layered
//! minus bare, divided by the workload's units (SSE events, or 1 request), is the layer's cost
//! per unit. `--check` compares that with `benches/instructions.json`, the baseline checked into
//! the repository: updating it is a reviewed change in the commit that explains it.
//!
//! One more row, `budget_memory_json_openai_chat`, is what [`BudgetLayer`] adds per JSON
//! request in front of the activity layer, with a [`MemoryBudgetStore`] (the gateway's shape,
//! and `benches/budget.rs`'s `budget_layer/memory`: a user charged to four windows — the
//! balance with a credit, the day, the month, and the minute capped on requests): the JSON
//! workload through budget and activity layers, less the same through the activity layer
//! alone (its "bare" column is that layered figure). `--only NAME` measures the workloads
//! whose name contains `NAME` and shows them (`--only budget`: the budget row alone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use testkit::budget;
use testkit::callgrind;
use testkit::workload::{self, Workload, bare, layered};
use tower::Layer;
use tower_activity::budget::{BudgetLayer, MemoryBudgetStore};
use tower_activity::sink::NoopSink;
use tower_activity::{ActivityLayer, WriterConfig};

/// The two run lengths whose difference is measured. The long run is 200 exchanges longer so
/// that a one-off heap event (a consolidation when the queued records are freed at exit, worth
/// ≈ 2,000 instructions per JSON exchange over a 50-exchange difference) is spread thin.
const RUNS: (u64, u64) = (10, 210);
/// How much a figure may grow over the baseline before `--check` fails.
const TOLERANCE: f64 = 0.05;
/// The baseline, relative to the package root.
const BASELINE: &str = "benches/instructions.json";
/// The budget layer's row, and the workload it runs.
const BUDGET: &str = "budget_memory_json_openai_chat";
const BUDGET_WORKLOAD: &str = "json_openai_chat";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--child", name, variant, n] => child(name, variant, n),
        [] => report(Mode::Show, ""),
        ["--only", only] => report(Mode::Show, only),
        ["--check"] => report(Mode::Check, ""),
        ["--update"] => report(Mode::Update, ""),
        _ => {
            eprintln!(
                "usage: cargo bench --bench instructions [-- --check | --update]\n\
                 or: cargo bench --bench instructions -- --only NAME\n\
                 got: {args:?}"
            );
            ExitCode::from(2)
        }
    }
}

/// The measured process: `n` exchanges of workload `name`, bare or layered.
fn child(name: &str, variant: &str, n: &str) -> ExitCode {
    let (Some(w), Ok(n)) = (workload::by_name(name), n.parse::<u64>()) else {
        eprintln!("instructions: unknown workload {name:?} or count {n:?}");
        return ExitCode::from(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let upstream = w.upstream();
    match variant {
        "bare" => rt.block_on(async {
            for _ in 0..n {
                std::hint::black_box(bare(&upstream, &w).await);
            }
        }),
        "layered" => rt.block_on(async {
            let service = quiet_layer().layer(upstream);
            for _ in 0..n {
                std::hint::black_box(layered(&service, &w).await);
            }
        }),
        "budget" => rt.block_on(budget(&w, n)),
        other => {
            eprintln!("instructions: unknown variant {other:?} (bare, layered or budget)");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// The activity layer (no-op sink) whose writer does not write, or wake on a timer, while
/// the exchanges run: one batch larger than the run, due in an hour. Its records are dropped
/// at exit.
fn quiet_layer() -> ActivityLayer {
    let config = WriterConfig::default()
        .with_queue_capacity(1 << 16)
        .with_batch_size(1 << 16)
        .with_batch_interval(Duration::from_secs(3600));
    ActivityLayer::builder(NoopSink)
        .writer_config(config)
        .build()
}

/// `n` exchanges of `w` through the budget layer (memory store, the gateway's four windows)
/// in front of the activity layer as the `layered` variant builds it.
async fn budget(w: &Workload, n: u64) {
    const USER: &str = "bench";
    let activity = quiet_layer();
    let store = MemoryBudgetStore::new();
    budget::grant(&store, USER, Decimal::from(1_000_000)).await;
    let budget = budget::gateway_shape(BudgetLayer::builder(store), USER)
        .events(activity.events())
        .build()
        .expect("a valid budget");
    let service = budget.layer(activity.layer(w.upstream_for()));
    for _ in 0..n {
        std::hint::black_box(layered(&service, w).await);
        budget.flush().await;
    }
    let stats = budget.stats();
    assert_eq!(
        (stats.settled, stats.refused),
        (n, 0),
        "every request settled"
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Show,
    Check,
    Update,
}

/// What one workload costs.
struct Figures {
    bare: f64,
    layered: f64,
    units: usize,
}

impl Figures {
    /// The layer's instructions per unit (per SSE event, or per JSON request).
    fn per_unit(&self) -> f64 {
        (self.layered - self.bare) / self.units as f64
    }
}

fn report(mode: Mode, only: &str) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("instructions: cannot find this binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!(
            "instructions: valgrind is not on PATH; install it (Debian: apt-get install valgrind)"
        );
        return ExitCode::FAILURE;
    }
    let dir = std::env::temp_dir().join(format!("instructions-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("instructions: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut figures = BTreeMap::new();
    let with_budget = BUDGET.contains(only);
    for w in workload::all() {
        let wanted = w.name.contains(only) || (with_budget && w.name == BUDGET_WORKLOAD);
        if !wanted {
            continue;
        }
        match measure(&exe, &dir, &w) {
            Ok(f) => {
                figures.insert(w.name, f);
            }
            Err(e) => {
                eprintln!("instructions: {}: {e}", w.name);
                return ExitCode::FAILURE;
            }
        }
    }
    if with_budget {
        // The activity layer alone is the JSON workload's layered figure.
        let activity = figures.get(BUDGET_WORKLOAD).map(|f| f.layered);
        let budget = activity.ok_or_else(|| format!("{BUDGET_WORKLOAD} not measured"));
        match budget.and_then(|activity| {
            let both = per_exchange(&exe, &dir, BUDGET_WORKLOAD, "budget")?;
            Ok(Figures {
                bare: activity,
                layered: both,
                units: 1,
            })
        }) {
            Ok(f) => {
                figures.insert(BUDGET, f);
            }
            Err(e) => {
                eprintln!("instructions: {BUDGET}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "{:<22} {:>14} {:>14} {:>7} {:>16}",
        "workload", "bare/exchange", "layered/exch.", "units", "layer per unit"
    );
    for (name, f) in &figures {
        println!(
            "{name:<22} {:>14.0} {:>14.0} {:>7} {:>16.0}",
            f.bare,
            f.layered,
            f.units,
            f.per_unit()
        );
    }
    let now: BTreeMap<&str, Value> = figures
        .iter()
        .map(|(name, f)| {
            let unit = if f.units == 1 { "request" } else { "event" };
            let v = json!({
                "layer_per_unit": f.per_unit().round() as i64,
                "unit": unit,
                "bare_per_exchange": f.bare.round() as i64,
                "layered_per_exchange": f.layered.round() as i64,
            });
            (*name, v)
        })
        .collect();
    println!("{}", json!(now));

    let baseline_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(BASELINE);
    match mode {
        Mode::Show => ExitCode::SUCCESS,
        Mode::Update => {
            let text = serde_json::to_string_pretty(&now).expect("JSON") + "\n";
            match std::fs::write(&baseline_path, text) {
                Ok(()) => {
                    println!("wrote {}", baseline_path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "instructions: cannot write {}: {e}",
                        baseline_path.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Mode::Check => check(&baseline_path, &figures),
    }
}

/// Fails when a workload's layer cost per unit grew more than [`TOLERANCE`] over the baseline,
/// or when the baseline lacks a workload.
fn check(path: &Path, figures: &BTreeMap<&str, Figures>) -> ExitCode {
    let baseline: Value = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "instructions: cannot read the baseline {}: {e}; run with --update",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for (name, f) in figures {
        let Some(base) = baseline[*name]["layer_per_unit"].as_f64() else {
            eprintln!(
                "{name}: not in the baseline {}; run with --update",
                path.display()
            );
            failed = true;
            continue;
        };
        let now = f.per_unit();
        let growth = if base > 0.0 { now / base - 1.0 } else { 0.0 };
        let verdict = if growth > TOLERANCE { "FAIL" } else { "ok" };
        println!(
            "{verdict:<4} {name:<22} baseline {base:>8.0}  now {now:>8.0}  ({:+.1} %)",
            growth * 100.0
        );
        failed |= growth > TOLERANCE;
    }
    if failed {
        eprintln!(
            "instructions: the layer's cost grew more than {:.0} % over {}: find the cause, or \
             update the baseline (--update) in the commit that explains it",
            TOLERANCE * 100.0,
            path.display()
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Both variants of one workload, each at both run lengths.
fn measure(exe: &Path, dir: &Path, w: &Workload) -> Result<Figures, String> {
    Ok(Figures {
        bare: per_exchange(exe, dir, w.name, "bare")?,
        layered: per_exchange(exe, dir, w.name, "layered")?,
        units: w.units,
    })
}

/// One variant's instructions per exchange: the difference of its two run lengths.
fn per_exchange(exe: &Path, dir: &Path, name: &str, variant: &str) -> Result<f64, String> {
    let short = count(exe, dir, name, variant, RUNS.0)?;
    let long = count(exe, dir, name, variant, RUNS.1)?;
    Ok((long as f64 - short as f64) / (RUNS.1 - RUNS.0) as f64)
}

/// The instructions of one child run under callgrind.
fn count(exe: &Path, dir: &Path, name: &str, variant: &str, n: u64) -> Result<u64, String> {
    let out: PathBuf = dir.join(format!("{name}-{variant}-{n}.out"));
    callgrind::instructions(exe, ["--child", name, variant, &n.to_string()], &out)
}
