//! A Redis key space of its own for each test: a unique prefix on the server `REDIS_URL`
//! (default `redis://127.0.0.1:6379`), its keys deleted when the test's value is dropped. A
//! test that cannot reach the server fails, naming the variable: it never skips silently.

use tower_activity::budget::RedisBudgetStore;

pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The server to test against.
pub fn server_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A prefix no other test uses; its keys are deleted on drop.
pub struct TestPrefix {
    pub prefix: String,
}

impl TestPrefix {
    pub fn new() -> Self {
        TestPrefix {
            prefix: format!("tower_activity_test:{}:", uuid::Uuid::now_v7().simple()),
        }
    }

    /// A store under this prefix (a process of its own as far as leases go), with a timeout
    /// far above any call's: these tests are about exactness, not speed, on a busy machine.
    pub async fn store(&self) -> RedisBudgetStore {
        let url = server_url();
        RedisBudgetStore::connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach Redis at REDIS_URL={url:?}: {e}\n\
                     start Redis (`.ci/run` does) or set REDIS_URL"
                )
            })
            .with_prefix(self.prefix.clone())
            .with_timeout(std::time::Duration::from_secs(120))
    }

    /// A plain connection, to look at or change keys directly.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let url = server_url();
        redis::Client::open(url.as_str())
            .expect("a valid REDIS_URL")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis at REDIS_URL={url:?}: {e}"))
    }
}

impl Default for TestPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        let (url, pattern) = (server_url(), format!("{}*", self.prefix));
        // Drop cannot await, and may run inside a runtime: a plain blocking connection.
        let cleaned = std::thread::spawn(move || -> redis::RedisResult<()> {
            let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut conn)?;
            }
            Ok(())
        })
        .join();
        if let Ok(Err(e)) = cleaned {
            eprintln!("could not delete the test's Redis keys: {e}");
        }
    }
}
