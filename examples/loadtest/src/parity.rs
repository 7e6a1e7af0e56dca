//! Talking to the gateway and its database: a fresh user per run, the row check, and the
//! PostgreSQL restart.

use std::collections::HashSet;
use std::process::Command;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use tower_activity::RecordKind;
use tower_activity::query::{ActivityQuery, LogQuery, MAX_LOG_LIMIT};
use tower_activity::sink::SqlSink;

use crate::drive::HttpClient;

/// Registers a fresh user; returns `(user_id, api_key)`.
pub async fn register(
    client: &HttpClient,
    base: &str,
    variant: &str,
) -> Result<(String, String), String> {
    let email = format!(
        "load-{variant}-{}-{}@example.com",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let request = Request::post(format!("{base}/auth/register"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({ "email": email }).to_string(),
        )))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("register: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("register: {e}"))?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("register answered {status}, not JSON: {e}"))?;
    match (v["user_id"].as_str(), v["api_key"].as_str()) {
        (Some(user), Some(key)) => Ok((user.to_owned(), key.to_owned())),
        _ => Err(format!("register answered {status}: {v}")),
    }
}

/// How many of `expected` (record ids) are stored for `user_id` in the database at `url`,
/// read back through the library's own query (every request row of the user, cursor pages).
pub async fn count_written(url: &str, user_id: &str, expected: &[String]) -> Result<u64, String> {
    let store = open_store(url).await?;
    let mut stored = HashSet::new();
    let mut query = LogQuery {
        limit: MAX_LOG_LIMIT,
        kind: Some(RecordKind::Request),
        ..LogQuery::default()
    };
    loop {
        let page = store
            .log(user_id, &query)
            .await
            .map_err(|e| format!("reading back the rows: {e}"))?;
        stored.extend(page.logs.iter().map(|r| r.id.to_string()));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor.parse().map_err(|e| format!("{e}"))?),
            None => break,
        }
    }
    Ok(expected.iter().filter(|id| stored.contains(*id)).count() as u64)
}

async fn open_store(url: &str) -> Result<SqlSink, String> {
    SqlSink::connect(url)
        .await
        .map_err(|e| format!("opening the activity store to check the rows: {e}"))
}

/// Restarts the local PostgreSQL cluster (Debian's `pg_ctlcluster`).
pub fn restart_postgres() -> Result<(), String> {
    let version = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("/etc/postgresql: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or("no cluster under /etc/postgresql")?;
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .map_err(|e| format!("pg_ctlcluster: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pg_ctlcluster restart: {status}"))
    }
}
