//! NATS for the fleet tests: the server `NATS_URL` (default `nats://127.0.0.1:4222`) with a
//! stream of its own for each test (deleted on drop), and a three-node JetStream cluster of
//! `nats-server` processes on loopback ports. A test that cannot reach NATS fails, naming the
//! variable: it never skips silently.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use tower_activity::sink::StreamConfig;

pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The server to test against.
pub fn server_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A plain client of `NATS_URL`, or a panic naming the variable.
pub async fn client() -> async_nats::Client {
    let url = server_url();
    async_nats::connect(url.as_str()).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach NATS at NATS_URL={url:?}: {e}\n\
             start `nats-server -js` (`.ci/run` does) or set NATS_URL"
        )
    })
}

/// A stream and subject no other test uses, on `NATS_URL`; the stream is deleted on drop.
pub struct TestStream {
    pub config: StreamConfig,
}

impl TestStream {
    pub fn new() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        TestStream {
            config: StreamConfig::default()
                .with_name(format!("TEST_{id}"))
                .with_subject(format!("test.{id}.records")),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.config.subject
    }

    /// A JetStream context on `NATS_URL`.
    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(client().await)
    }

    /// The stream's messages (its `state.messages`).
    pub async fn messages(&self) -> u64 {
        let js = self.jetstream().await;
        let mut stream = js.get_stream(self.name()).await.expect("the stream exists");
        stream.info().await.expect("stream info").state.messages
    }
}

impl Default for TestStream {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let name = self.config.name.clone();
        let url = server_url();
        // Drop cannot await, and may run inside a runtime: a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    if let Ok(client) = async_nats::connect(url.as_str()).await {
                        let _ = jetstream::new(client).delete_stream(&name).await;
                    }
                })
        })
        .join();
    }
}

/// Three `nats-server -js` processes clustered on free loopback ports
/// ([`ports::free_ports`](crate::ports::free_ports)), their data in a temporary directory;
/// killed and removed on drop.
pub struct Cluster {
    nodes: Vec<Option<Child>>,
    /// The three client ports, then the three route ports.
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Cluster {
    /// Starts the three nodes and waits until each accepts clients.
    pub fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!("nats-cluster-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            ports: crate::ports::free_ports(6),
            dir,
        };
        for node in 0..3 {
            let child = cluster.spawn(node);
            cluster.nodes.push(Some(child));
        }
        for node in 0..3 {
            cluster.wait_for(node);
        }
        cluster
    }

    fn client_port(&self, node: usize) -> u16 {
        self.ports[node]
    }

    fn route_port(&self, node: usize) -> u16 {
        self.ports[3 + node]
    }

    fn spawn(&self, node: usize) -> Child {
        let routes: Vec<String> = (0..3)
            .filter(|n| *n != node)
            .map(|n| format!("nats-route://127.0.0.1:{}", self.route_port(n)))
            .collect();
        let store = self.dir.join(format!("n{node}"));
        let mut command = Command::new(nats_server());
        command
            .args(["-js", "-a", "127.0.0.1", "--server_name"])
            .arg(format!("n{node}"))
            .args(["-p", &self.client_port(node).to_string()])
            .args(["--cluster_name", "activity-test"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", self.route_port(node)),
            ])
            .args(["--routes", &routes.join(",")])
            .arg("-sd")
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command.spawn().unwrap_or_else(|e| {
            panic!("cannot start nats-server ({e}): install it (`apt-get install nats-server`; `.ci/run` does)")
        })
    }

    fn wait_for(&self, node: usize) {
        let addr = format!("127.0.0.1:{}", self.client_port(node));
        for _ in 0..100 {
            if TcpStream::connect(&addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nats-server node {node} never listened on {addr}");
    }

    /// Every node's client URL, comma-separated.
    pub fn urls(&self) -> String {
        (0..3).map(|n| self.url(n)).collect::<Vec<_>>().join(",")
    }

    /// Node `node`'s client URL.
    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.client_port(node))
    }

    /// Kills node `node` (SIGKILL).
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `node` again (same data directory).
    pub fn restart(&mut self, node: usize) {
        if self.nodes[node].is_none() {
            let child = self.spawn(node);
            self.nodes[node] = Some(child);
            self.wait_for(node);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `nats-server` binary: `NATS_SERVER` or the one on `PATH` (Debian puts it in /usr/sbin).
fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return path.into();
    }
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let path = PathBuf::from(dir).join("nats-server");
        if path.exists() {
            return path;
        }
    }
    PathBuf::from("nats-server")
}
