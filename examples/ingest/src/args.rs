//! The command line (hand-parsed: a dozen flags do not justify clap's build time in an
//! example).

use std::net::SocketAddr;
use std::time::Duration;

use tower_activity::ingest::IngestConfig;
use tower_activity::sink::{DEFAULT_NATS_URL, StreamConfig};

/// `ingest --help`.
pub const USAGE: &str = "\
ingest: writes the activity records gateways publish to JetStream into a database

usage: ingest [--nats-url URL[,URL…]] --database-url URL [options]

  --nats-url URLS        NATS server(s), comma-separated (env NATS_URL; default nats://127.0.0.1:4222)
  --database-url URL     postgres://… or sqlite://FILE (env DATABASE_URL; required)
  --stream NAME          JetStream stream (default ACTIVITY; created if missing)
  --subject SUBJECT      its subject (default activity.records)
  --replicas N           replicas when the stream is created (default 1)
  --durable NAME         the shared durable consumer (default ingest)
  --batch-size N         records per database transaction at most (default 1000)
  --batch-wait-ms MS     how long a partial batch waits for more records (default 50)
  --in-flight N          batches written at once (default 2)
  --ack-wait-secs N      JetStream's redelivery wait for an unacknowledged message, set when the
                         consumer is created (default 60; above --sink-timeout-secs)
  --sink-timeout-secs N  the longest one database write may take (default 30)
  --metrics-addr ADDR    serve Prometheus text on http://ADDR/metrics (default: off), from the
                         start: ingest_connected is 0 until the consumer is open, then 1
  --log-every SECS       a progress line every SECS seconds (default 10)
";

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Args {
    pub nats_url: String,
    pub database_url: String,
    pub config: IngestConfig,
    pub metrics_addr: Option<SocketAddr>,
    pub log_every: Duration,
}

impl Args {
    /// Parses `args` (without the program name), falling back on `NATS_URL` and
    /// `DATABASE_URL`. `Err("")` asks for the usage; otherwise `Err` names the flag and value.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut nats_url =
            std::env::var("NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
        let mut database_url = std::env::var("DATABASE_URL").ok();
        let mut stream = StreamConfig::default();
        let mut config = IngestConfig::default();
        let mut metrics_addr = None;
        let mut log_every = Duration::from_secs(10);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))?;
            match flag.as_str() {
                "--nats-url" => nats_url = value,
                "--database-url" => database_url = Some(value),
                "--stream" => stream = stream.with_name(value),
                "--subject" => stream = stream.with_subject(value),
                "--replicas" => stream = stream.with_replicas(number(&flag, &value)?),
                "--durable" => config = config.with_durable(value),
                "--batch-size" => config = config.with_batch_size(number(&flag, &value)?),
                "--batch-wait-ms" => {
                    config = config.with_batch_wait(Duration::from_millis(number(&flag, &value)?))
                }
                "--ack-wait-secs" => {
                    config = config.with_ack_wait(Duration::from_secs(number(&flag, &value)?))
                }
                "--sink-timeout-secs" => {
                    config = config.with_sink_timeout(Duration::from_secs(number(&flag, &value)?))
                }
                "--in-flight" => config = config.with_in_flight(number(&flag, &value)?),
                "--metrics-addr" => {
                    metrics_addr = Some(value.parse().map_err(|_| {
                        format!(
                            "--metrics-addr must be an address like 127.0.0.1:9464, got {value:?}"
                        )
                    })?)
                }
                "--log-every" => {
                    log_every = Duration::from_secs(number::<u64>(&flag, &value)?.max(1))
                }
                _ => return Err(format!("unknown flag {flag:?} (see --help)")),
            }
        }
        let database_url = database_url
            .ok_or("--database-url (or DATABASE_URL) is required: postgres://… or sqlite://FILE")?;
        let config = config.with_stream(stream);
        config.validate()?;
        Ok(Args {
            nats_url,
            database_url,
            config,
            metrics_addr,
            log_every,
        })
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} must be a whole number, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_set_the_configuration() {
        let a = parse(&[
            "--nats-url",
            "nats://a:4222,nats://b:4222",
            "--database-url",
            "postgres://x@h/db",
            "--stream",
            "S",
            "--replicas",
            "3",
            "--batch-size",
            "500",
            "--batch-wait-ms",
            "5",
            "--ack-wait-secs",
            "10",
            "--sink-timeout-secs",
            "5",
            "--metrics-addr",
            "127.0.0.1:9464",
        ])
        .unwrap();
        assert_eq!(a.nats_url, "nats://a:4222,nats://b:4222");
        assert_eq!(a.database_url, "postgres://x@h/db");
        assert_eq!(
            (a.config.stream.name.as_str(), a.config.stream.replicas),
            ("S", 3)
        );
        assert_eq!(a.config.batch_size, 500);
        assert_eq!(a.config.batch_wait, Duration::from_millis(5));
        assert_eq!(
            (a.config.ack_wait, a.config.sink_timeout),
            (Duration::from_secs(10), Duration::from_secs(5))
        );
        assert_eq!(a.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err =
            parse(&["--database-url", "postgres://h/db", "--batch-size", "many"]).unwrap_err();
        assert!(
            err.contains("--batch-size") && err.contains("many"),
            "{err}"
        );
        let err = parse(&["--database-url", "postgres://h/db", "--batch-size", "0"]).unwrap_err();
        assert!(err.contains("batch_size"), "{err}");
        let err =
            parse(&["--database-url", "postgres://h/db", "--ack-wait-secs", "30"]).unwrap_err();
        assert!(err.contains("ack_wait"), "{err}");
        let err = parse(&["--database-url", "postgres://h/db", "--nope", "1"]).unwrap_err();
        assert!(err.contains("--nope"), "{err}");
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
    }
}
