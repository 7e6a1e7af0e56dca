//! Percentiles per variant, the readable table and the final JSON line.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::args::Variant;
use crate::drive::Shot;

/// The figures of one variant.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub completed: u64,
    pub rps_achieved: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub ttfb_p50_us: Option<u64>,
    pub ttfb_p99_us: Option<u64>,
    pub schedule_lag_p99_us: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub records_expected: Option<u64>,
    pub records_written: Option<u64>,
    pub parity: Option<bool>,
    pub rss_start_kib: Option<u64>,
    pub cpu_us_per_request: Option<f64>,
    pub voluntary_switches_per_request: Option<f64>,
    /// Instructions the gateway executed in all, start to exit (`--callgrind`).
    pub instructions: Option<u64>,
    /// Requests sent to the gateway, warm-up included (with `instructions`).
    pub requests: Option<u64>,
    pub involuntary_switches_per_request: Option<f64>,
    pub rss_warm_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub note: Option<String>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Percentiles of the measured (non-warm-up), successful shots.
pub fn figures(shots: &[Shot], wall: Duration) -> Figures {
    let (mut latency, mut ttfb, mut lag) = (histogram(), histogram(), histogram());
    let mut f = Figures::default();
    for shot in shots.iter().filter(|s| !s.warmup) {
        let _ = lag.record(micros(shot.lag));
        if let Some(e) = &shot.error {
            f.errors += 1;
            f.first_error.get_or_insert_with(|| e.clone());
            continue;
        }
        f.completed += 1;
        let _ = latency.record(micros(shot.latency));
        if let (true, Some(t)) = (shot.stream, shot.ttfb) {
            let _ = ttfb.record(micros(t));
        }
    }
    f.rps_achieved = f.completed as f64 / wall.as_secs_f64().max(1e-9);
    f.p50_us = latency.value_at_quantile(0.50);
    f.p90_us = latency.value_at_quantile(0.90);
    f.p99_us = latency.value_at_quantile(0.99);
    f.p999_us = latency.value_at_quantile(0.999);
    f.schedule_lag_p99_us = lag.value_at_quantile(0.99);
    if !ttfb.is_empty() {
        f.ttfb_p50_us = Some(ttfb.value_at_quantile(0.50));
        f.ttfb_p99_us = Some(ttfb.value_at_quantile(0.99));
    }
    f
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// What a variant's overhead is measured against: `baseline` for the gateway's sink variants,
/// `direct` for another proxy, nothing for the references themselves.
fn reference(variant: Variant, rows: &[(Variant, Figures)]) -> Option<&Figures> {
    let want = match variant {
        Variant::Direct | Variant::Baseline => return None,
        Variant::External => Variant::Direct,
        _ => Variant::Baseline,
    };
    find(rows, want)
}

fn find(rows: &[(Variant, Figures)], want: Variant) -> Option<&Figures> {
    rows.iter().find(|(r, _)| *r == want).map(|(_, f)| f)
}

/// `f − b` at p50 and p99, in µs.
fn delta(f: &Figures, b: &Figures) -> (i64, i64) {
    (
        f.p50_us as i64 - b.p50_us as i64,
        f.p99_us as i64 - b.p99_us as i64,
    )
}

/// The table, one line per variant.
pub fn table(rows: &[(Variant, Figures)], skipped: &[(Variant, String)]) -> String {
    let mut out = format!(
        "{:<9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>16} {:>10} {:>8}\n",
        "variant",
        "rps",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "Δp50 µs",
        "Δp99 µs",
        "ttfb p50",
        "errors",
        "rows",
        "cpu µs/req",
        "csw/req"
    );
    for (variant, f) in rows {
        let (d50, d99) = match reference(*variant, rows).map(|b| delta(f, b)) {
            Some((d50, d99)) => (format!("{d50:+}"), format!("{d99:+}")),
            None => ("-".into(), "-".into()),
        };
        let rows_text = match (f.records_written, f.records_expected, f.parity) {
            (Some(w), Some(e), Some(p)) => format!("{w}/{e} {}", if p { "ok" } else { "LOST" }),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<9} {:>8.1} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>16} {:>10} {:>8}\n",
            variant.as_str(),
            f.rps_achieved,
            f.p50_us,
            f.p90_us,
            f.p99_us,
            f.p999_us,
            d50,
            d99,
            f.ttfb_p50_us.map_or("-".into(), |t| t.to_string()),
            f.errors,
            rows_text,
            f.cpu_us_per_request
                .map_or("-".into(), |c| format!("{c:.1}")),
            match (
                f.voluntary_switches_per_request,
                f.involuntary_switches_per_request
            ) {
                (Some(v), Some(i)) => format!("{:.2}", v + i),
                _ => "-".into(),
            },
        ));
    }
    for (variant, why) in skipped {
        out.push_str(&format!("{:<9} skipped: {why}\n", variant.as_str()));
    }
    out
}

/// The final JSON line (DESIGN.md §10): every figure of every variant.
pub fn json_line(
    rps_target: f64,
    mode: &str,
    rows: &[(Variant, Figures)],
    skipped: &[(Variant, String)],
) -> String {
    let mut top = Map::new();
    top.insert("rps_target".into(), json!(rps_target));
    top.insert("mode".into(), json!(mode));
    for (variant, f) in rows {
        let mut o = Map::new();
        o.insert(
            "rps_achieved".into(),
            json!((f.rps_achieved * 10.0).round() / 10.0),
        );
        for (k, v) in [
            ("p50_us", f.p50_us),
            ("p90_us", f.p90_us),
            ("p99_us", f.p99_us),
            ("p999_us", f.p999_us),
        ] {
            o.insert(k.into(), json!(v));
        }
        if let Some(t) = f.ttfb_p50_us {
            o.insert("ttfb_p50_us".into(), json!(t));
            o.insert("ttfb_p99_us".into(), json!(f.ttfb_p99_us));
        }
        if let Some((d50, d99)) = reference(*variant, rows).map(|b| delta(f, b)) {
            o.insert("overhead_p50_us".into(), json!(d50));
            o.insert("overhead_p99_us".into(), json!(d99));
        }
        let direct = find(rows, Variant::Direct).filter(|_| *variant != Variant::Direct);
        if let Some((d50, d99)) = direct.map(|d| delta(f, d)) {
            o.insert("proxy_p50_us".into(), json!(d50));
            o.insert("proxy_p99_us".into(), json!(d99));
        }
        o.insert("schedule_lag_p99_us".into(), json!(f.schedule_lag_p99_us));
        o.insert("errors".into(), json!(f.errors));
        if let Some(e) = &f.first_error {
            o.insert("first_error".into(), json!(e));
        }
        if variant.records() {
            o.insert("records_expected".into(), json!(f.records_expected));
            o.insert("records_written".into(), json!(f.records_written));
            o.insert("parity".into(), json!(f.parity));
        }
        if f.rss_start_kib.is_some() {
            o.insert("rss_start_kib".into(), json!(f.rss_start_kib));
            o.insert("rss_warm_kib".into(), json!(f.rss_warm_kib));
            o.insert("rss_end_kib".into(), json!(f.rss_end_kib));
        }
        if let Some(cpu) = f.cpu_us_per_request {
            o.insert(
                "cpu_us_per_request".into(),
                json!((cpu * 10.0).round() / 10.0),
            );
        }
        for (k, v) in [
            (
                "voluntary_switches_per_request",
                f.voluntary_switches_per_request,
            ),
            (
                "involuntary_switches_per_request",
                f.involuntary_switches_per_request,
            ),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), json!((v * 100.0).round() / 100.0));
            }
        }
        if let (Some(i), Some(n)) = (f.instructions, f.requests) {
            o.insert("instructions".into(), json!(i));
            o.insert("requests".into(), json!(n));
        }
        if let Some(n) = &f.note {
            o.insert("note".into(), json!(n));
        }
        top.insert(variant.as_str().into(), Value::Object(o));
    }
    for (variant, why) in skipped {
        top.insert(variant.as_str().into(), Value::Null);
        top.entry("skipped")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("an object")
            .insert(variant.as_str().into(), json!(why));
    }
    Value::Object(top).to_string()
}
