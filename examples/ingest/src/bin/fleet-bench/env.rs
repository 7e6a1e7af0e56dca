//! What a run stands on: the workspace binaries as processes, a database and a stream of its
//! own, and the machine's load.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::Connection as _;
use tokio::time::Instant;
use tower_activity::sink::{PostgresSink, StreamConfig};

/// Builds the workspace binaries `names` (a no-op when fresh) in this binary's profile and
/// returns their directory.
pub fn binaries(names: &[&str]) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe
        .parent()
        .ok_or("this binary has no directory")?
        .to_path_buf();
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet"]);
        for name in names {
            build.args(["-p", name, "--bin", name]);
        }
        if dir.components().any(|c| c.as_os_str() == "release") {
            build.arg("--release");
        }
        let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("building {names:?} failed"));
        }
    }
    for name in names {
        if !dir.join(name).exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release -p {name}`",
                dir.join(name).display()
            ));
        }
    }
    Ok(dir)
}

/// A free loopback port (bound and released: good enough on one's own machine).
pub fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))
}

/// A child process, killed if still running when dropped.
pub struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Starts `command` and waits until `addr` accepts connections.
    pub async fn start(
        mut command: Command,
        name: String,
        addr: SocketAddr,
    ) -> Result<Proc, String> {
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let mut proc = Proc { child, name };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(proc);
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(format!("{} exited at start: {status}", proc.name));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {addr} within 30 s",
                    proc.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then up to 60 s for it to exit (SIGKILL after): whether it exited cleanly.
    pub async fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => break,
            }
        }
        eprintln!("{} did not stop within 60 s: killed", self.name);
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An `ingest` process of `dir` on `stream`, sharing the consumer `durable`, with `flags`
/// (the tuning), ready once its `/metrics` listens (returned).
pub async fn ingest(
    dir: &Path,
    nats_url: &str,
    database_url: &str,
    stream: &StreamConfig,
    durable: &str,
    flags: &[String],
) -> Result<(Proc, SocketAddr), String> {
    let metrics = free_addr()?;
    let mut command = Command::new(dir.join("ingest"));
    command
        .args(["--nats-url", nats_url, "--database-url", database_url])
        .args(["--stream", &stream.name, "--subject", &stream.subject])
        .args(["--durable", durable, "--metrics-addr", &metrics.to_string()])
        .args(["--log-every", "3600"])
        .args(flags);
    let proc = Proc::start(command, format!("ingest ({durable})"), metrics).await?;
    Ok((proc, metrics))
}

/// `(records written, batches)` from an ingester's `/metrics`.
pub async fn ingest_counters(addr: SocketAddr) -> Result<(u64, u64), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("ingest /metrics at {addr}: {e}"))?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    conn.read_to_string(&mut text)
        .await
        .map_err(|e| e.to_string())?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .map(|v| v as u64)
            .ok_or_else(|| format!("{name} missing from {addr}/metrics"))
    };
    Ok((
        value("ingest_records_written_total")?,
        value("ingest_batches_total")?,
    ))
}

/// A database of the run's own on the server of `base_url`, migrated; dropped by
/// [`Database::drop_it`].
pub struct Database {
    base_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl Database {
    pub async fn create(base_url: &str, tag: &str) -> Result<Database, String> {
        let name = format!("fleet_bench_{tag}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(base_url)
            .await
            .map_err(|e| format!("cannot reach PostgreSQL at --database-url {base_url}: {e}"))?;
        // Two statements: CREATE DATABASE cannot share a (implicit) transaction.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(&sql)
                .execute(&mut admin)
                .await
                .map_err(|e| format!("creating database {name}: {e}"))?;
        }
        let url = with_database(base_url, &name);
        // Migrated here once, so that the processes starting together only find it done.
        PostgresSink::connect(&url)
            .await
            .map_err(|e| format!("migrating {name}: {e}"))?;
        Ok(Database {
            base_url: base_url.to_owned(),
            name,
            url,
        })
    }

    /// Drops the database (its connections too).
    pub async fn drop_it(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.base_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::raw_sql(&sql).execute(&mut admin).await;
        }
    }
}

/// `url` with its database name replaced by `name` (the query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority..].find('/') {
        Some(i) => &head[..authority + i],
        None => head,
    };
    format!("{base}/{name}{query}")
}

/// A stream and subject no one else uses.
pub fn stream(tag: &str) -> StreamConfig {
    let id = uuid::Uuid::now_v7().simple().to_string();
    StreamConfig::default()
        .with_name(format!("FLEET_BENCH_{tag}_{id}"))
        .with_subject(format!("fleet_bench.{id}.records"))
}

/// A JetStream context on `nats_url`.
pub async fn jetstream(nats_url: &str) -> Result<async_nats::jetstream::Context, String> {
    let client = async_nats::connect(nats_url)
        .await
        .map_err(|e| format!("cannot reach NATS at --nats-url {nats_url}: {e}"))?;
    Ok(async_nats::jetstream::new(client))
}

/// Deletes the stream (and its consumers).
pub async fn delete_stream(nats_url: &str, stream: &StreamConfig) {
    if let Ok(js) = jetstream(nats_url).await {
        let _ = js.delete_stream(&stream.name).await;
    }
}

/// The 1-minute load average now (`/proc/loadavg`).
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The median of `values` (sorted here).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
