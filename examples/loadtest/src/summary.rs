//! `loadtest summarize FILE…`: the median and spread of several runs' JSON lines
//! (`scripts/loadtest-median.sh` runs the load test three times and calls this).
//!
//! For each mode and variant: the median `[min … max]` of `Δp50`/`Δp99` (the variant minus
//! the baseline of the same run), of the gateway's CPU per request and of its context
//! switches per request, each also as the variant minus the baseline of the same run (the
//! layer's share), and in how many runs parity held. Runs made with `--callgrind` add the
//! instructions per request (`scripts/gateway-instructions.sh`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::args::Variant;

/// One figure over the runs.
#[derive(Debug, Default)]
struct Series(Vec<f64>);

impl Series {
    fn push(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.0.push(v);
        }
    }

    /// `median [min … max]`, or `-` without values.
    fn show(&self, decimals: usize) -> String {
        if self.0.is_empty() {
            return "-".into();
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        format!(
            "{median:.decimals$} [{:.decimals$} … {:.decimals$}]",
            v[0],
            v[n - 1]
        )
    }
}

/// The figures of one variant over the runs.
#[derive(Debug, Default)]
struct Summary {
    runs: usize,
    p50: Series,
    p99: Series,
    d50: Series,
    d99: Series,
    cpu: Series,
    cpu_layer: Series,
    switches: Series,
    switches_layer: Series,
    parity_ok: usize,
    parity_checked: usize,
    /// `(requests, instructions)` of `--callgrind` runs.
    points: Vec<(f64, f64)>,
}

impl Summary {
    /// Instructions per request: the slope between the shortest and the longest run, so that
    /// what every run pays once (start, registration, drain) drops out. `None` without two
    /// run lengths.
    fn per_request(&self) -> Option<f64> {
        let lo = self.points.iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
        let hi = self.points.iter().max_by(|a, b| a.0.total_cmp(&b.0))?;
        (hi.0 > lo.0).then(|| (hi.1 - lo.1) / (hi.0 - lo.0))
    }
}

fn number(o: &Value, key: &str) -> Option<f64> {
    o.get(key).and_then(Value::as_f64)
}

fn switches(o: &Value) -> Option<f64> {
    Some(
        number(o, "voluntary_switches_per_request")?
            + number(o, "involuntary_switches_per_request")?,
    )
}

/// Reads the JSON lines of `files` and prints the summary; `Err` when a file cannot be read
/// or holds no run.
pub fn run(files: &[String]) -> Result<String, String> {
    // mode → variant → summary, in the order variants are listed.
    let mut modes: BTreeMap<String, BTreeMap<usize, Summary>> = BTreeMap::new();
    let mut lines = 0;
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let run: Value =
                serde_json::from_str(line).map_err(|e| format!("{file}: not a JSON line: {e}"))?;
            let mode = run
                .get("mode")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let rps = number(&run, "rps_target").unwrap_or(0.0);
            let key = format!("{mode} at {rps} rps");
            let baseline = run
                .get(Variant::Baseline.as_str())
                .filter(|v| v.is_object());
            let base = |k: &str| baseline.and_then(|b| number(b, k));
            let variants = modes.entry(key).or_default();
            for (i, variant) in Variant::ALL.iter().enumerate() {
                let Some(o) = run.get(variant.as_str()).filter(|v| v.is_object()) else {
                    continue;
                };
                let s = variants.entry(i).or_default();
                s.runs += 1;
                s.p50.push(number(o, "p50_us"));
                s.p99.push(number(o, "p99_us"));
                s.d50.push(number(o, "overhead_p50_us"));
                s.d99.push(number(o, "overhead_p99_us"));
                let cpu = number(o, "cpu_us_per_request");
                s.cpu.push(cpu);
                let sw = switches(o);
                s.switches.push(sw);
                if variant.records() {
                    s.cpu_layer
                        .push(cpu.zip(base("cpu_us_per_request")).map(|(a, b)| a - b));
                    s.switches_layer
                        .push(sw.zip(baseline.and_then(switches)).map(|(a, b)| a - b));
                }
                if let (Some(n), Some(i)) = (number(o, "requests"), number(o, "instructions")) {
                    s.points.push((n, i));
                }
                if let Some(p) = o.get("parity").and_then(Value::as_bool) {
                    s.parity_checked += 1;
                    s.parity_ok += usize::from(p);
                }
            }
            lines += 1;
        }
    }
    if lines == 0 {
        return Err(format!("no load-test JSON lines in {files:?}"));
    }
    let mut out = String::new();
    for (mode, variants) in &modes {
        let _ = writeln!(
            out,
            "\n{mode}: median [min … max] over the runs; Δ and \"layer\" are the variant minus the baseline of the same run\n"
        );
        let _ = writeln!(
            out,
            "| variant | runs | p50 µs | p99 µs | Δp50 µs | Δp99 µs | CPU µs/req | layer CPU µs/req | switches/req | layer switches/req | parity |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        for (i, s) in variants {
            let parity = if s.parity_checked == 0 {
                "-".to_owned()
            } else {
                format!("{}/{}", s.parity_ok, s.parity_checked)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                Variant::ALL[*i].as_str(),
                s.runs,
                s.p50.show(0),
                s.p99.show(0),
                s.d50.show(0),
                s.d99.show(0),
                s.cpu.show(1),
                s.cpu_layer.show(1),
                s.switches.show(2),
                s.switches_layer.show(2),
                parity
            );
        }
        let base = variants.get(&1).and_then(Summary::per_request);
        if variants.values().any(|s| s.per_request().is_some()) {
            let _ = writeln!(
                out,
                "\n{mode}, under callgrind: instructions per request (the slope between the shortest and the longest run)\n"
            );
            let _ = writeln!(
                out,
                "| variant | instructions/req | layer instructions/req |"
            );
            let _ = writeln!(out, "|---|---|---|");
            for (i, s) in variants {
                let Some(per) = s.per_request() else { continue };
                let layer = match base {
                    Some(b) if Variant::ALL[*i].records() => format!("{:+.0}", per - b),
                    _ => "-".into(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {per:.0} | {layer} |",
                    Variant::ALL[*i].as_str()
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spread_over_runs() {
        let dir = std::env::temp_dir().join(format!("loadtest-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("runs.jsonl");
        let line = |cpu_base: f64, cpu_pg: f64, d99: i64, parity: bool| {
            serde_json::json!({
                "rps_target": 1000.0, "mode": "sse",
                "baseline": {"p50_us": 300, "p99_us": 700, "cpu_us_per_request": cpu_base,
                    "voluntary_switches_per_request": 2.0, "involuntary_switches_per_request": 0.5},
                "postgres": {"p50_us": 350, "p99_us": 700 + d99, "overhead_p50_us": 50,
                    "overhead_p99_us": d99, "cpu_us_per_request": cpu_pg, "parity": parity,
                    "voluntary_switches_per_request": 3.0, "involuntary_switches_per_request": 0.5},
            })
            .to_string()
        };
        let text = [
            "loadtest: a log line is skipped".to_owned(),
            line(100.0, 130.0, 90, true),
            line(110.0, 150.0, 300, true),
            line(90.0, 125.0, 40, false),
        ]
        .join("\n");
        std::fs::write(&file, text).unwrap();
        let out = run(&[file.display().to_string()]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let row = out
            .lines()
            .find(|l| l.starts_with("| postgres"))
            .expect("a postgres row");
        // Δp99 90, 300, 40 → median 90; layer CPU 30, 40, 35 → median 35.
        assert!(row.contains("| 90 [40 … 300] |"), "{row}");
        assert!(row.contains("| 35.0 [30.0 … 40.0] |"), "{row}");
        assert!(row.contains("| 1.00 [1.00 … 1.00] |"), "{row}");
        assert!(row.ends_with("| 2/3 |"), "{row}");
        assert!(out.contains("sse at 1000 rps"), "{out}");
    }

    #[test]
    fn instructions_per_request_is_the_slope_between_run_lengths() {
        let dir = std::env::temp_dir().join(format!("loadtest-slope-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("runs.jsonl");
        // Fixed costs of 1e9 (baseline) and 2e9 (noop); 100k and 130k per request.
        let line = |n: u64| {
            serde_json::json!({
                "rps_target": 200.0, "mode": "json",
                "baseline": {"p50_us": 1, "p99_us": 1, "requests": n,
                    "instructions": 1_000_000_000 + 100_000 * n},
                "noop": {"p50_us": 1, "p99_us": 1, "requests": n,
                    "instructions": 2_000_000_000 + 130_000 * n},
            })
            .to_string()
        };
        std::fs::write(&file, [line(400), line(1200)].join("\n")).unwrap();
        let out = run(&[file.display().to_string()]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.contains("| baseline | 100000 | - |"), "{out}");
        assert!(out.contains("| noop | 130000 | +30000 |"), "{out}");
    }

    #[test]
    fn no_runs_is_an_error() {
        let dir = std::env::temp_dir().join(format!("loadtest-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("none.jsonl");
        std::fs::write(&file, "nothing here\n").unwrap();
        let result = run(&[file.display().to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(result.is_err());
    }
}
