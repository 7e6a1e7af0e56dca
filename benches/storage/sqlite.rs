//! `cargo bench --bench storage -- --sqlite-instructions`: what the SQLite store costs per
//! record, in instructions counted by `valgrind --tool=callgrind` (the figure that does not
//! move with the machine's load).
//!
//! The binary runs itself under callgrind as a child that writes `n` records, for two values
//! of `n`; the difference of the two totals over the difference of the `n`s is the cost of one
//! record without start-up, migrations and statement preparation (a warm-up batch,
//! [`WARM_UP`], prepares every statement before the measured records). Variants:
//!
//! - `build`: the records are made and dropped (the baseline of `sink`);
//! - `sink`: `SqliteSink::write` of the records, [`BATCH`] at a time, into a file database
//!   (WAL, `synchronous = NORMAL`, as the gateway opens it);
//! - `noop`: the records go through an [`ActivityWriter`] into a `NoopSink` (the baseline of
//!   `store`, as the gateway's `noop:` store);
//! - `store`: the same writer with a spool and the SQLite sink (the gateway's default store).
//!
//! The callgrind files are kept under `target/storage-instructions/` for
//! `callgrind_annotate` (`--inclusive=yes`): the per-function view of the same runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rust_decimal::Decimal;
use testkit::callgrind;
use tower_activity::sink::{NoopSink, SqliteSink};
use tower_activity::{
    ActivityRecord, ActivitySink, ActivityWriter, CostSource, SpoolConfig, WriterConfig,
};

/// The two run lengths whose difference is measured.
const RUNS: (u64, u64) = (400, 2_400);
/// Records per `SqliteSink::write` in the `sink` variant: about a second of the gateway's
/// load test at 200 requests per second.
const BATCH: usize = 200;
/// Records the `sink` and `store` variants write before the measured ones, in one batch of
/// 64 + 32 + … + 1: every insert statement is prepared, and every rollup row exists, in both
/// runs alike, so the difference holds none of that however the writer happens to batch.
const WARM_UP: u64 = 127;

/// The record written `i`-th: four users, five models, a request id in the metadata; priced
/// as the layer prices a record, with its cost's parts and the price table's entry in the
/// metadata (the JSON the spool's line and the SQL columns write besides the strings).
fn record(i: u64) -> ActivityRecord {
    let at = Utc::now() - TimeDelta::milliseconds(i as i64);
    let mut r = super::record(&format!("user{}", i % 4), i, at);
    let cost = r.cost_usd.unwrap_or_default();
    let input = cost / Decimal::from(4);
    r.cost_source = Some(CostSource::Computed);
    r.cost_details = Some(
        [("input", input), ("output", cost - input)]
            .into_iter()
            .collect(),
    );
    r.metadata.insert(
        "price_table".into(),
        serde_json::json!({"source": "litellm model_prices_and_context_window.json", "date": "2026-11-20"}),
    );
    r
}

/// The measured process: `n` records through `variant`.
pub(crate) fn child(variant: &str, n: &str, dir: &str) -> ExitCode {
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("sqlite-instructions: bad count {n:?}");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match variant {
            "build" => {
                for i in 0..n {
                    std::hint::black_box(record(i));
                }
            }
            "sink" => {
                let sink = open(dir).await;
                let mut batch = Vec::with_capacity(BATCH);
                for i in 0..n {
                    batch.push(record(i));
                    if batch.len() == BATCH {
                        sink.write(&batch).await.expect("write");
                        batch.clear();
                    }
                }
                if !batch.is_empty() {
                    sink.write(&batch).await.expect("write");
                }
                sink.close().await;
            }
            "noop" | "store" => {
                let config = WriterConfig::default().with_batch_interval(Duration::from_millis(50));
                let writer = if variant == "noop" {
                    ActivityWriter::start(NoopSink, config)
                } else {
                    let sink = open(dir).await;
                    let spool = SpoolConfig::new(dir.join("spool"));
                    ActivityWriter::start(sink, config.with_spool(spool))
                };
                for i in 0..n {
                    assert!(writer.record(record(i)), "the writer took the record");
                    // A request's pace, roughly: the writer's tasks run between records.
                    if i % 16 == 15 {
                        tokio::task::yield_now().await;
                    }
                }
                let stats = writer.shutdown(Duration::from_secs(600)).await;
                assert_eq!(stats.written, n, "every record written: {stats:?}");
                eprintln!("{variant} {n}: {} batches", stats.batches);
            }
            other => panic!("unknown variant {other:?} (build, sink, noop or store)"),
        }
    });
    ExitCode::SUCCESS
}

async fn open(dir: &Path) -> SqliteSink {
    let url = format!("sqlite://{}", dir.join("activity.db").display());
    let sink = SqliteSink::connect(&url).await.expect("open the database");
    let warm_up: Vec<ActivityRecord> = (0..WARM_UP).map(record).collect();
    sink.write(&warm_up).await.expect("warm-up write");
    sink
}

/// Runs every variant at both lengths under callgrind and prints the instructions per record.
pub(crate) fn report() -> ExitCode {
    let exe = std::env::current_exe().expect("this binary");
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("sqlite-instructions: valgrind is not on PATH (apt-get install valgrind)");
        return ExitCode::FAILURE;
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/storage-instructions");
    let slope = |variant: &str| -> Result<f64, String> {
        let short = count(&exe, &out, variant, RUNS.0)?;
        let long = count(&exe, &out, variant, RUNS.1)?;
        Ok((long as f64 - short as f64) / (RUNS.1 - RUNS.0) as f64)
    };
    let figures = ["build", "sink", "noop", "store"]
        .into_iter()
        .map(|v| slope(v).map(|s| (v, s)))
        .collect::<Result<Vec<_>, _>>();
    let figures = match figures {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sqlite-instructions: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (variant, per_record) in &figures {
        println!("{variant:<6} {per_record:>10.0} instructions per record");
    }
    let get = |v: &str| figures.iter().find(|(n, _)| *n == v).map_or(0.0, |f| f.1);
    println!(
        "SqliteSink::write ({BATCH} a batch): {:.0} per record; writer + spool + SQLite over \
         the noop writer: {:.0} per record (callgrind files in {})",
        get("sink") - get("build"),
        get("store") - get("noop"),
        out.display()
    );
    ExitCode::SUCCESS
}

/// The instructions of one child run under callgrind, all threads together.
fn count(exe: &Path, out: &Path, variant: &str, n: u64) -> Result<u64, String> {
    let dir: PathBuf = out.join(format!("{variant}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = out.join(format!("{variant}-{n}.out"));
    let n_text = n.to_string();
    let args: [&OsStr; 4] = [
        "--sqlite-child".as_ref(),
        variant.as_ref(),
        n_text.as_ref(),
        dir.as_os_str(),
    ];
    let counted = callgrind::instructions(exe, args, &file);
    let _ = std::fs::remove_dir_all(&dir);
    counted.map_err(|e| format!("{variant} {n}: {e}"))
}
