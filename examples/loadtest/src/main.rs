//! Load test: the example gateway's overhead under an open-loop load, with records really
//! written, and row parity after a drain.
//!
//! ```sh
//! cargo run --release -p loadtest -- --rps 1000 --duration 10 --mode json \
//!     --database-url postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! It starts the mock upstream (`examples/mock_upstream.rs`) and then, one after the other,
//! the gateway (`examples/gateway.rs`) in each configuration — `baseline` (no layer), `noop`
//! (layer, discarding sink), `sqlite`, `postgres` (with `--database-url`) — as separate
//! processes, and sends the same schedule of requests through each: request `i` is due at
//! `i / rps` seconds and its latency counts from then (open loop: a stall cannot hide behind
//! a load generator that waits). `direct` sends the schedule straight to the mock: the floor
//! every proxy adds to; `external` (with `--target URL`) measures another proxy, e.g. LiteLLM
//! pointed at the same mock (`scripts/peer-litellm.sh`).
//!
//! After each gateway run the gateway gets SIGTERM (it drains its writer and exits), and every
//! `x-activity-id` the gateway answered with is looked up in the database: `parity` is true
//! when every one of them is there. `--restart-postgres-at S` restarts PostgreSQL S seconds
//! into the postgres run to show that nothing is lost across an outage.
//!
//! Output: a table, then one JSON line with every figure (DESIGN.md §10):
//! `{"rps_target", "mode", "direct": {…}, "baseline": {…}, "noop": {…}, "sqlite": {…},
//! "postgres": {…}}`; each variant has `rps_achieved`, `p50_us`, `p90_us`, `p99_us`,
//! `p999_us`, `errors`; all but `direct`/`baseline` have `overhead_p50_us`/`overhead_p99_us`
//! (variant − baseline; `external`: − direct) and `proxy_p50_us`/`proxy_p99_us` (variant −
//! direct); streams add `ttfb_p50_us`/`ttfb_p99_us`; gateways add `rss_start_kib`/
//! `rss_warm_kib` (after the warm-up and one second), `rss_end_kib`, `cpu_us_per_request` (the
//! gateway's CPU time over the run, per request: the most stable figure on a noisy box) and
//! `voluntary_switches_per_request`/`involuntary_switches_per_request` (the gateway's context
//! switches, all threads, per request: a thread waking another shows here); sinks add `records_expected`, `records_written`, `parity`. A variant that
//! was skipped is `null`, with the reason under `skipped`.

mod args;
mod drive;
mod parity;
mod procs;
mod report;
mod summary;

use std::process::ExitCode;
use std::time::Duration;

use args::{Args, USAGE, Variant};
use drive::Plan;
use procs::Proc;
use report::Figures;

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "summarize") {
        return match summary::run(&argv[1..]) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadtest summarize: {e}");
                ExitCode::from(1)
            }
        };
    }
    let args = match Args::parse(argv.into_iter()) {
        Ok(args) => args,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadtest: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs every variant; `Ok(false)` when a parity check failed.
async fn run(args: Args) -> Result<bool, String> {
    let gateway_needed = args.variants.iter().any(|v| v.is_gateway());
    let mut names = vec!["mock_upstream"];
    if gateway_needed {
        names.push("gateway");
    }
    let dir = procs::binaries_dir(&names)?;
    let client = drive::client(args.connections);
    let _mock;
    let upstream = match &args.upstream_url {
        Some(url) => url.clone(),
        None => {
            let addr = procs::free_addr()?;
            let mock = Proc::start(
                &dir,
                "mock_upstream",
                addr,
                &[
                    ("MOCK_ADDR", addr.to_string()),
                    ("MOCK_CHUNKS", args.chunks.to_string()),
                ],
            )
            .await?;
            _mock = mock;
            format!("http://{addr}")
        }
    };
    eprintln!(
        "loadtest: {} rps, {} s (+{} s warm-up), mode {}, {} connections, upstream {upstream}",
        args.rps,
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        args.mode.as_str(),
        args.connections
    );
    let templates = drive::templates(args.mode, &args.model, args.include_usage);
    let mut rows: Vec<(Variant, Figures)> = Vec::new();
    let mut skipped: Vec<(Variant, String)> = Vec::new();
    let mut all_parity = true;
    for (n, variant) in args.variants.iter().copied().enumerate() {
        let plan = |base_url: String, bearer: Option<String>| Plan {
            base_url,
            bearer,
            rps: args.rps,
            warmup: args.warmup,
            duration: args.duration,
            connections: args.connections,
            templates: templates.clone(),
        };
        eprintln!("loadtest: running {}", variant.as_str());
        let figures = match variant {
            Variant::Direct => {
                let (shots, wall) = drive::run(&client, &plan(upstream.clone(), None)).await;
                report::figures(&shots, wall)
            }
            Variant::External => {
                let target = args.target.clone().unwrap_or_default();
                let (shots, wall) =
                    drive::run(&client, &plan(target, args.target_key.clone())).await;
                report::figures(&shots, wall)
            }
            _ => {
                let database_url = match database_url(variant, &args, n)? {
                    Ok(url) => url,
                    Err(why) => {
                        eprintln!("loadtest: {} skipped: {why}", variant.as_str());
                        skipped.push((variant, why));
                        continue;
                    }
                };
                let f = gateway_run(
                    &dir,
                    &client,
                    variant,
                    &upstream,
                    &database_url,
                    &args,
                    &plan,
                )
                .await?;
                all_parity &= f.parity != Some(false);
                f
            }
        };
        rows.push((variant, figures));
    }
    eprint!("\n{}", report::table(&rows, &skipped));
    println!(
        "{}",
        report::json_line(args.rps, args.mode.as_str(), &rows, &skipped)
    );
    Ok(all_parity)
}

/// The `DATABASE_URL` a gateway variant runs with, or why it is skipped.
fn database_url(variant: Variant, args: &Args, n: usize) -> Result<Result<String, String>, String> {
    Ok(match variant {
        Variant::Baseline | Variant::Noop => Ok("noop:".into()),
        Variant::Sqlite => {
            let dir = std::env::current_dir()
                .map_err(|e| e.to_string())?
                .join("target/loadtest");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let file = dir.join(format!("activity-{}-{n}.db", std::process::id()));
            Ok(format!("sqlite://{}", file.display()))
        }
        Variant::Postgres => args
            .database_url
            .clone()
            .ok_or_else(|| "no --database-url".to_owned()),
        Variant::Direct | Variant::External => unreachable!("not a gateway variant"),
    })
}

async fn gateway_run(
    dir: &std::path::Path,
    client: &drive::HttpClient,
    variant: Variant,
    upstream: &str,
    database_url: &str,
    args: &Args,
    plan: &dyn Fn(String, Option<String>) -> Plan,
) -> Result<Figures, String> {
    let addr = procs::free_addr()?;
    let mut env = vec![
        ("GATEWAY_ADDR", addr.to_string()),
        ("DATABASE_URL", database_url.to_owned()),
        ("UPSTREAM_URL", upstream.to_owned()),
        // Credits far beyond any run: the load measures the layers, not a balance running out.
        ("INITIAL_CREDITS", "1000000".to_owned()),
    ];
    if variant == Variant::Baseline {
        env.push(("GATEWAY_ACTIVITY", "off".to_owned()));
    }
    match args.budget_store.as_deref() {
        Some("off") => env.push(("GATEWAY_BUDGET", "off".to_owned())),
        Some(store) => env.push(("BUDGET_STORE", store.to_owned())),
        None => {}
    }
    let mut wrapper = Vec::new();
    let mut callgrind_out = None;
    if args.callgrind {
        let out = std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join("target/loadtest")
            .join(format!(
                "callgrind-{}-{}.out",
                std::process::id(),
                variant.as_str()
            ));
        std::fs::create_dir_all(out.parent().expect("a directory"))
            .map_err(|e| format!("target/loadtest: {e}"))?;
        wrapper = vec![
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", out.display()),
        ];
        callgrind_out = Some(out);
    }
    let gateway = Proc::start_under(&wrapper, dir, "gateway", addr, &env).await?;
    let base = format!("http://{addr}");
    let (user_id, key) = parity::register(client, &base, variant.as_str()).await?;
    let rss_start = gateway.rss_kib();
    // Memory once warm (after the warm-up and one measured second): "flat" is warm → end.
    let pid = gateway.child.id();
    let warm_at = args.warmup + Duration::from_secs(1);
    let rss_warm = tokio::spawn(async move {
        tokio::time::sleep(warm_at).await;
        procs::rss_kib(pid)
    });
    let restart = match (variant, args.restart_postgres_at) {
        (Variant::Postgres, Some(at)) => Some(tokio::spawn(async move {
            tokio::time::sleep(at).await;
            parity::restart_postgres()
        })),
        _ => None,
    };
    let cpu_start = procs::cpu_us(pid);
    let switches_start = procs::ctx_switches(pid);
    let (shots, wall) = drive::run(client, &plan(base, Some(key))).await;
    let rss_end = gateway.rss_kib();
    let cpu_end = procs::cpu_us(pid);
    let switches_end = procs::ctx_switches(pid);
    let clean = gateway.terminate(Duration::from_secs(60)).await;
    let mut f = report::figures(&shots, wall);
    if let Some(out) = &callgrind_out {
        f.instructions = procs::callgrind_total(out);
        f.requests = Some(shots.len() as u64);
    }
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        f.cpu_us_per_request = Some((b.saturating_sub(a)) as f64 / shots.len().max(1) as f64);
    }
    if let (Some((v0, i0)), Some((v1, i1))) = (switches_start, switches_end) {
        let n = shots.len().max(1) as f64;
        f.voluntary_switches_per_request = Some(v1.saturating_sub(v0) as f64 / n);
        f.involuntary_switches_per_request = Some(i1.saturating_sub(i0) as f64 / n);
    }
    f.rss_start_kib = rss_start;
    f.rss_warm_kib = rss_warm.await.ok().flatten();
    f.rss_end_kib = rss_end;
    if let Some(task) = restart {
        let outcome = task.await.map_err(|e| e.to_string())?;
        f.note = Some(match outcome {
            Ok(()) => format!(
                "PostgreSQL restarted {} s into the run",
                args.restart_postgres_at.unwrap_or_default().as_secs_f64()
            ),
            Err(e) => format!("PostgreSQL restart failed: {e}"),
        });
    }
    if !clean {
        f.note = Some("the gateway did not exit cleanly on SIGTERM".into());
    }
    if variant != Variant::Baseline && variant != Variant::Noop {
        let expected: Vec<String> = shots.iter().filter_map(|s| s.record_id.clone()).collect();
        let written = parity::count_written(database_url, &user_id, &expected).await?;
        f.records_expected = Some(expected.len() as u64);
        f.records_written = Some(written);
        f.parity = Some(written == expected.len() as u64 && !expected.is_empty());
    }
    Ok(f)
}
