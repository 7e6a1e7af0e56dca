//! The processes under test: the mock upstream and the gateway run as their own binaries (the
//! `gateway` and `mock_upstream` binaries of the workspace, built next to this one), so that
//! the gateway's memory can be read and its shutdown is the real SIGTERM path.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// Builds the workspace binaries `names` (a no-op when fresh) and returns their directory.
pub fn binaries_dir(names: &[&str]) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe
        .parent()
        .ok_or("the load test's binary has no directory")?
        .to_path_buf();
    let release = dir.components().any(|c| c.as_os_str() == "release");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--workspace"]);
        for name in names {
            build.args(["--bin", name]);
        }
        if release {
            build.arg("--release");
        }
        let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("building the binaries {names:?} failed"));
        }
    }
    for name in names {
        if !dir.join(name).exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release --bin {name}`",
                dir.join(name).display()
            ));
        }
    }
    Ok(dir)
}

/// A free loopback port (bound and released: good enough for a local benchmark).
pub fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))
}

/// A child process that is terminated when dropped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    /// Starts `dir/name` with `env` and waits until `addr` accepts connections.
    pub async fn start(
        dir: &std::path::Path,
        name: &'static str,
        addr: SocketAddr,
        env: &[(&str, String)],
    ) -> Result<Proc, String> {
        Proc::start_under(&[], dir, name, addr, env).await
    }

    /// [`start`](Self::start), run by `wrapper` (a command and its arguments, e.g. valgrind)
    /// when it is not empty; the wait for the listener is then longer.
    pub async fn start_under(
        wrapper: &[String],
        dir: &std::path::Path,
        name: &'static str,
        addr: SocketAddr,
        env: &[(&str, String)],
    ) -> Result<Proc, String> {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(dir.join(name));
                c
            }
            None => Command::new(dir.join(name)),
        };
        let wait = if wrapper.is_empty() { 30 } else { 300 };
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let mut proc = Proc { child, name };
        let deadline = Instant::now() + Duration::from_secs(wait);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(proc);
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(format!("{name} exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not listen on {addr} within {wait} s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory in KiB (Linux `/proc`), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }

    /// SIGTERM, then waits up to `grace` for a clean exit (SIGKILL after). Returns whether it
    /// exited successfully by itself.
    pub async fn terminate(mut self, grace: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => {
                    eprintln!("{} did not exit within {grace:?}: killed", self.name);
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return false;
                }
            }
        }
    }
}

/// Resident memory of process `pid` in KiB (Linux `/proc`), if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) process `pid` has used so far, in microseconds (Linux `/proc`,
/// clock-tick resolution: 10 ms at the usual 100 Hz), if readable.
pub fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000)
}

/// Context switches of process `pid` so far, summed over its threads (Linux
/// `/proc/<pid>/task/*/status`): `(voluntary, involuntary)`. A thread that exited is no
/// longer counted; the gateway's are its long-lived runtime workers and writer.
pub fn ctx_switches(pid: u32) -> Option<(u64, u64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut voluntary, mut involuntary) = (0, 0);
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            let count =
                |prefix: &str| -> Option<u64> { line.strip_prefix(prefix)?.trim().parse().ok() };
            if let Some(n) = count("voluntary_ctxt_switches:") {
                voluntary += n;
            } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                involuntary += n;
            }
        }
    }
    Some((voluntary, involuntary))
}

/// The total instructions (`Ir`) of a callgrind output file (its `totals:` or `summary:`
/// line), if readable.
pub fn callgrind_total(file: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
