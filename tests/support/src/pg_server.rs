//! A PostgreSQL server of a test's own (initdb in a temporary directory, on a loopback port),
//! for tests that restart the database: the shared server at DATABASE_URL is everyone's.
//! Needs PostgreSQL's server binaries (`PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`);
//! run as root, the server runs as user `postgres` (it refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running private server; stopped and its directory removed on drop.
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

impl PgServer {
    /// initdb + start on a free loopback port ([`ports::free_port`](crate::ports::free_port)),
    /// kept across [`stop`](Self::stop) and [`start_server`](Self::start_server).
    pub fn start() -> PgServer {
        let port = crate::ports::free_port();
        let bin = pg_bin();
        let dir = std::env::temp_dir().join(format!("pg-{port}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir), "chown");
        }
        let server = PgServer {
            dir,
            port,
            bin,
            as_postgres,
        };
        server.pg(
            "initdb",
            &[
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ],
            true,
        );
        server.start_server();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.pg("pg_ctl", &["stop", "-m", "fast", "-w", "-D"], true);
    }

    /// Starts it again after [`stop`](Self::stop).
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.pg_args(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-D".as_ref(),
                self.data().as_os_str(),
            ],
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs PostgreSQL program `program` with `args`, then the data directory when `data`.
    fn pg(&self, program: &str, args: &[&str], data: bool) {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let dir = self.data();
        if data {
            all.push(dir.as_os_str());
        }
        self.pg_args(program, &all);
    }

    fn pg_args(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command, program);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command, what: &str) -> Output {
    let out = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {what} ({e}): install PostgreSQL's server (`.ci/run` does) or set PG_BIN"
        )
    });
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return dir.into();
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries in {}: install postgresql or set PG_BIN",
            root.display()
        )
    })
}
