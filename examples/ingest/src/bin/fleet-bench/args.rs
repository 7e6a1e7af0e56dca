//! The command line (hand-parsed, as the `ingest` program's).

use std::time::Duration;

/// `fleet-bench --help`.
pub const USAGE: &str = "\
fleet-bench: the fleet path's lag and backlog ingest rate (see BENCHMARKS.md)

usage: fleet-bench lag [options]
       fleet-bench backlog [options]

common:
  --nats-url URL         NATS with JetStream (env NATS_URL; default nats://127.0.0.1:4222)
  --database-url URL     PostgreSQL; each run makes a database of its own there
                         (env DATABASE_URL; default postgres://postgres@127.0.0.1:5432/postgres)
  --runs N               runs of each setting (default 3); the median is printed
  --batch-size N         the ingesters' --batch-size (default: theirs, 1000)
  --batch-wait-ms MS     the ingesters' --batch-wait-ms (default: theirs, 50)
  --in-flight N          the ingesters' --in-flight (default: theirs, 2)

lag:
  --rps N[,N…]           steady request rates, one setting each (default 500,1000)
  --duration SECS        measured seconds per run (default 10)
  --warmup SECS          seconds before them, not measured (default 2)
  --gateway-batch-ms MS  the gateway's ACTIVITY_BATCH_INTERVAL_MS (default: its own, 1000)
  --redis-url URL        the gateway's BUDGET_STORE (env REDIS_URL; default redis://127.0.0.1:6379)
  --poll-ms MS           how often PostgreSQL is asked for the rows not yet seen (default 5):
                         the lag's resolution

backlog:
  --records N            records published before the ingesters start (default 1000000)
  --ingesters N[,N…]     ingester processes sharing the consumer, one setting each (default 1,2)
";

/// What to measure.
#[derive(Debug)]
pub enum Command {
    Lag(LagArgs),
    Backlog(BacklogArgs),
}

/// Flags of both commands.
#[derive(Debug, Clone)]
pub struct Common {
    pub nats_url: String,
    pub database_url: String,
    pub runs: usize,
    /// Flags handed to each `ingest` process.
    pub ingest_flags: Vec<String>,
}

/// `fleet-bench lag`.
#[derive(Debug)]
pub struct LagArgs {
    pub common: Common,
    pub rps: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    pub gateway_batch_ms: Option<u64>,
    pub redis_url: String,
    pub poll: Duration,
}

/// `fleet-bench backlog`.
#[derive(Debug)]
pub struct BacklogArgs {
    pub common: Common,
    pub records: usize,
    pub ingesters: Vec<usize>,
}

/// Parses the arguments after the program name. `Err("")` asks for the usage.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let command = args.next().unwrap_or_default();
    let mut common = Common {
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        runs: 3,
        ingest_flags: Vec::new(),
    };
    let mut lag = (vec![500, 1_000], 10, 2, None, 5);
    let mut redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut backlog = (1_000_000, vec![1, 2]);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value (see --help)"))?;
        match (command.as_str(), flag.as_str()) {
            (_, "--nats-url") => common.nats_url = value,
            (_, "--database-url") => common.database_url = value,
            (_, "--runs") => common.runs = number::<usize>(&flag, &value)?.max(1),
            (_, "--batch-size" | "--batch-wait-ms" | "--in-flight") => {
                number::<u64>(&flag, &value)?;
                common.ingest_flags.extend([flag, value]);
            }
            ("lag", "--rps") => lag.0 = list(&flag, &value)?,
            ("lag", "--duration") => lag.1 = number(&flag, &value)?,
            ("lag", "--warmup") => lag.2 = number(&flag, &value)?,
            ("lag", "--gateway-batch-ms") => lag.3 = Some(number(&flag, &value)?),
            ("lag", "--redis-url") => redis_url = value,
            ("lag", "--poll-ms") => lag.4 = number::<u64>(&flag, &value)?.max(1),
            ("backlog", "--records") => backlog.0 = number(&flag, &value)?,
            ("backlog", "--ingesters") => backlog.1 = list(&flag, &value)?,
            _ => {
                return Err(format!(
                    "unknown flag {flag:?} for {command:?} (see --help)"
                ));
            }
        }
    }
    match command.as_str() {
        "lag" => Ok(Command::Lag(LagArgs {
            common,
            rps: lag.0,
            duration: Duration::from_secs(lag.1),
            warmup: Duration::from_secs(lag.2),
            gateway_batch_ms: lag.3,
            redis_url,
            poll: Duration::from_millis(lag.4),
        })),
        "backlog" => Ok(Command::Backlog(BacklogArgs {
            common,
            records: backlog.0,
            ingesters: backlog.1,
        })),
        "" | "--help" | "-h" => Err(String::new()),
        other => Err(format!(
            "unknown command {other:?}: lag or backlog (see --help)"
        )),
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} must be a whole number, got {value:?}"))
}

fn list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value.split(',').map(|v| number(flag, v.trim())).collect()
}
