//! The command line of the load test (hand-parsed: a dozen flags do not justify clap's build
//! time in an example).

use std::time::Duration;

/// What a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// OpenAI chat JSON requests.
    Json,
    /// OpenAI chat streaming requests.
    Sse,
    /// The four APIs, JSON and streaming, in turn.
    Mix,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Json => "json",
            Mode::Sse => "sse",
            Mode::Mix => "mix",
        }
    }
}

/// A gateway configuration measured by the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Straight to the mock upstream: the floor every proxy adds to.
    Direct,
    /// The gateway without the layer.
    Baseline,
    /// The layer with a sink that discards.
    Noop,
    /// The layer writing to SQLite.
    Sqlite,
    /// The layer writing to PostgreSQL (needs `--database-url`).
    Postgres,
    /// Another proxy (`--target`), e.g. LiteLLM pointed at the same mock.
    External,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::Direct,
        Variant::Baseline,
        Variant::Noop,
        Variant::Sqlite,
        Variant::Postgres,
        Variant::External,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Direct => "direct",
            Variant::Baseline => "baseline",
            Variant::Noop => "noop",
            Variant::Sqlite => "sqlite",
            Variant::Postgres => "postgres",
            Variant::External => "external",
        }
    }

    /// Whether the variant runs the example gateway.
    pub fn is_gateway(self) -> bool {
        !matches!(self, Variant::Direct | Variant::External)
    }

    /// Whether the gateway runs the layer (and so rows can be checked).
    pub fn records(self) -> bool {
        matches!(self, Variant::Noop | Variant::Sqlite | Variant::Postgres)
    }
}

#[derive(Debug, Clone)]
pub struct Args {
    pub rps: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub mode: Mode,
    pub connections: usize,
    pub chunks: usize,
    pub database_url: Option<String>,
    pub variants: Vec<Variant>,
    pub restart_postgres_at: Option<Duration>,
    pub target: Option<String>,
    pub target_key: Option<String>,
    pub model: String,
    pub upstream_url: Option<String>,
    pub include_usage: bool,
    pub callgrind: bool,
    pub budget_store: Option<String>,
}

pub const USAGE: &str = "\
usage: loadtest [--rps N] [--duration SECS] [--warmup SECS] [--mode json|sse|mix]
                [--connections N] [--chunks N] [--database-url postgres://…]
                [--variants direct,baseline,noop,sqlite,postgres,external]
                [--restart-postgres-at SECS] [--target URL [--target-key KEY]]
                [--model NAME] [--upstream-url URL] [--include-usage] [--callgrind]
                [--budget-store redis://…|off]
       loadtest summarize FILE...

Drives an open-loop load (requests are sent on a fixed schedule, and latency is measured from
the scheduled instant, so a stall is never hidden by the load generator waiting) through the
example gateway in each configuration, then checks that every request has its row.

  --rps N                requests per second (default 500)
  --duration SECS        measured seconds per variant (default 10)
  --warmup SECS          unmeasured seconds before (default 2)
  --mode M               json | sse | mix (default json)
  --connections N        most requests in flight (default 256)
  --chunks N             content chunks per mock stream (default 8)
  --database-url URL     PostgreSQL for the postgres variant (skipped without it)
  --variants LIST        which to run (default: direct,baseline,noop,sqlite,postgres,
                         plus external with --target)
  --restart-postgres-at S  restart PostgreSQL S seconds into the postgres variant
  --target URL           also measure another proxy at URL (variant external), sending
                         OpenAI chat requests to URL/v1/chat/completions
  --target-key KEY       Bearer key for --target
  --model NAME           model name in requests (default gpt-4o-mini)
  --upstream-url URL     use this running mock upstream instead of starting one
  --include-usage        OpenAI chat streams ask for usage themselves (the layer then has
                         nothing to inject or strip)
  --budget-store URL     the gateways' BUDGET_STORE (e.g. redis://127.0.0.1:6379): by default
                         the budget layer keeps its counters in the variant's database, and
                         on PostgreSQL every request then waits for an admission commit
                         (≈ 6 ms, benches/budget.rs), all on the run's one user; `off` runs
                         the gateways without spend control (GATEWAY_BUDGET=off): the
                         activity layer and its sink alone against the baseline
  --callgrind            run each gateway under `valgrind --tool=callgrind` and report the
                         instructions it executed in all (`instructions`): the steady figure
                         on a busy machine (two runs of different lengths give the
                         instructions per request: scripts/gateway-instructions.sh)

`summarize` reads the JSON lines of earlier runs (FILE...) and prints, per mode and variant,
the median [min … max] of Δp50, Δp99, CPU and context switches per request (also minus the
same run's baseline) and the runs whose parity held (scripts/loadtest-median.sh).
";

impl Args {
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            rps: 500.0,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            mode: Mode::Json,
            connections: 256,
            chunks: 8,
            database_url: None,
            variants: Vec::new(),
            restart_postgres_at: None,
            target: None,
            target_key: None,
            model: "gpt-4o-mini".into(),
            upstream_url: None,
            include_usage: false,
            callgrind: false,
            budget_store: None,
        };
        while let Some(flag) = argv.next() {
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            if flag == "--include-usage" {
                args.include_usage = true;
                continue;
            }
            if flag == "--callgrind" {
                args.callgrind = true;
                continue;
            }
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--rps" => args.rps = positive(&flag, &value)?,
                "--duration" => args.duration = seconds(&flag, &value)?,
                "--warmup" => args.warmup = seconds(&flag, &value)?,
                "--mode" => {
                    args.mode = match value.as_str() {
                        "json" => Mode::Json,
                        "sse" => Mode::Sse,
                        "mix" => Mode::Mix,
                        _ => return Err(format!("--mode {value:?}: use json, sse or mix")),
                    }
                }
                "--connections" => args.connections = positive(&flag, &value)? as usize,
                "--chunks" => args.chunks = positive(&flag, &value)? as usize,
                "--database-url" => args.database_url = Some(value),
                "--variants" => {
                    args.variants = value
                        .split(',')
                        .map(|name| {
                            Variant::ALL
                                .into_iter()
                                .find(|v| v.as_str() == name.trim())
                                .ok_or_else(|| {
                                    format!(
                                        "--variants: unknown variant {name:?} (direct, baseline, noop, sqlite, postgres, external)"
                                    )
                                })
                        })
                        .collect::<Result<_, _>>()?
                }
                "--restart-postgres-at" => args.restart_postgres_at = Some(seconds(&flag, &value)?),
                "--target" => args.target = Some(value.trim_end_matches('/').to_owned()),
                "--target-key" => args.target_key = Some(value),
                "--model" => args.model = value,
                "--budget-store" => args.budget_store = Some(value),
                "--upstream-url" => args.upstream_url = Some(value.trim_end_matches('/').to_owned()),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        if args.variants.is_empty() {
            args.variants = vec![
                Variant::Direct,
                Variant::Baseline,
                Variant::Noop,
                Variant::Sqlite,
                Variant::Postgres,
            ];
            if args.target.is_some() {
                args.variants.push(Variant::External);
            }
        }
        if args.variants.contains(&Variant::External) && args.target.is_none() {
            return Err("variant external needs --target URL".into());
        }
        if args.target.is_some() && args.mode == Mode::Mix {
            return Err("--target measures OpenAI chat only: use --mode json or sse".into());
        }
        Ok(args)
    }
}

fn positive(flag: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("{flag} {value:?}: must be a number above 0"))
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} {value:?}: must be a number of seconds"))
}
