//! A PostgreSQL database of its own for each test, so that tests run in parallel.
//!
//! The server is `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). A test
//! that cannot reach it fails, naming the variable: it never skips silently.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server to test against.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

async fn admin() -> PgConnection {
    let url = server_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at DATABASE_URL={url:?}: {e}\n\
             start PostgreSQL or set DATABASE_URL to a server where this user may CREATE DATABASE"
        )
    })
}

/// A fresh database, dropped (with its connections) when this value is dropped.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("tower_activity_test_{}", uuid::Uuid::now_v7().simple());
        admin()
            .await
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE on DATABASE_URL={:?}: {e}", server_url()));
        TestDb { name }
    }

    /// The database's URL (the server's URL with this database).
    pub fn url(&self) -> String {
        let server = server_url();
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base.to_owned(), format!("?{query}")),
            None => (server.clone(), String::new()),
        };
        let root = match base.split_once("://").and_then(|(_, rest)| rest.find('/')) {
            Some(_) => base[..base.rfind('/').unwrap()].to_owned(),
            None => base,
        };
        format!("{root}/{}{query}", self.name)
    }

    /// A pool on this database.
    pub async fn pool(&self, max_connections: u32) -> PgPool {
        let options = PgConnectOptions::from_str(&server_url())
            .unwrap()
            .database(&self.name);
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .unwrap()
    }

    /// Terminates every connection to this database but the caller's; returns how many.
    pub async fn kill_connections(&self, admin: &mut PgConnection) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS killed",
        )
        .bind(&self.name)
        .fetch_one(admin)
        .await
        .unwrap()
    }

    /// A connection to the server (not to this database), for [`kill_connections`](Self::kill_connections).
    pub async fn admin(&self) -> PgConnection {
        admin().await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await, and may run inside a runtime: a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move { admin().await.execute(sql.as_str()).await.map(|_| ()) })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database: {e}");
        }
    }
}

/// [`scenarios::stats_match`](super::scenarios::stats_match) for eight random sets of up to 80
/// records, each in fresh tables (a prefix per case) of one new database; `configure` picks
/// the sink's write path (e.g. `|sink| sink.with_copy_threshold(1)` for the bulk path).
pub fn stats_match_for_random_data(
    configure: fn(tower_activity::sink::PostgresSink) -> tower_activity::sink::PostgresSink,
) {
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_activity::sink::{PostgresSink, TableNames};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, pool) = rt.block_on(async {
        let db = TestDb::create().await;
        let pool = db.pool(4).await;
        (db, pool)
    });
    let mut runner = TestRunner::new(Config {
        cases: 8,
        ..Config::default()
    });
    let case = AtomicUsize::new(0);
    runner
        .run(
            &proptest::collection::vec(super::data::arb_record(), 0..80),
            |records| {
                let case = case.fetch_add(1, Ordering::Relaxed);
                // A prefix per case: fresh tables in the same database.
                let names = TableNames::new().with_prefix(&format!("c{case}_")).unwrap();
                rt.block_on(async {
                    let sink = PostgresSink::from_pool(pool.clone(), names).await.unwrap();
                    super::scenarios::stats_match(&configure(sink), &records).await;
                });
                Ok(())
            },
        )
        .unwrap();
    rt.block_on(pool.close());
    drop(db);
}
