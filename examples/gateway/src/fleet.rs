//! Fleet mode: with `ACTIVITY_NATS_URL` set, the gateway publishes its activity records to
//! JetStream ([`NatsSink`]) instead of writing them into `DATABASE_URL`; ingesters (the
//! `ingest` program) write them there, and the activity API reads them back from it.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ACTIVITY_NATS_URL` | unset: records go to `DATABASE_URL` | NATS server(s), comma-separated (a cluster's nodes) |
//! | `ACTIVITY_NATS_STREAM` | `ACTIVITY` | the JetStream stream (created if missing) |
//! | `ACTIVITY_NATS_SUBJECT` | `activity.records` | its subject |
//! | `ACTIVITY_NATS_REPLICAS` | `1` | replicas when the stream is created (3 in a 3-node cluster) |
//!
//! `DATABASE_URL` still holds users and sessions and answers `/user/activity/*`, from what
//! the ingesters wrote: a read sees a request made just before once the ingesters have caught
//! up (their lag, usually well under a second), not at once as with a direct write. The live
//! feed (`/user/activity/stream`) shows records as soon as JetStream acknowledged them.

use std::sync::Arc;

use tower_activity::sink::{NatsSink, StreamConfig};

use crate::Storage;
use crate::config::var;

/// Where fleet mode publishes, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// NATS server(s), comma-separated.
    pub nats_url: String,
    /// The stream and subject.
    pub stream: StreamConfig,
}

impl FleetConfig {
    /// Fleet mode over `nats_url` with the default stream.
    pub fn new(nats_url: impl Into<String>) -> Self {
        FleetConfig {
            nats_url: nats_url.into(),
            stream: StreamConfig::default(),
        }
    }

    /// `None` unless `ACTIVITY_NATS_URL` is set; `Err` names the variable and the value.
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(nats_url) = var("ACTIVITY_NATS_URL")? else {
            return Ok(None);
        };
        let mut stream = StreamConfig::default();
        if let Some(name) = var("ACTIVITY_NATS_STREAM")? {
            stream = stream.with_name(name);
        }
        if let Some(subject) = var("ACTIVITY_NATS_SUBJECT")? {
            stream = stream.with_subject(subject);
        }
        if let Some(v) = var("ACTIVITY_NATS_REPLICAS")? {
            let replicas = v
                .parse()
                .ok()
                .filter(|r| (1..=5).contains(r))
                .ok_or_else(|| {
                    format!("ACTIVITY_NATS_REPLICAS must be a number from 1 to 5, got {v:?}")
                })?;
            stream = stream.with_replicas(replicas);
        }
        Ok(Some(FleetConfig { nats_url, stream }))
    }
}

impl Storage {
    /// The same storage, with activity published to JetStream instead of written to the
    /// database (see the [module docs](self)). `Err` is a one-line cause naming
    /// `ACTIVITY_NATS_URL`.
    pub async fn publish_through(mut self, fleet: &FleetConfig) -> Result<Storage, String> {
        let sink = NatsSink::builder()
            .url(fleet.nats_url.as_str())
            .stream(fleet.stream.clone())
            .connection_name("gateway")
            .build()
            .await
            .map_err(|e| format!("ACTIVITY_NATS_URL={}: {e}", fleet.nats_url))?;
        self.description = format!(
            "{}, activity through JetStream stream {} at {}",
            self.description, fleet.stream.name, fleet.nats_url
        );
        self.sink = Arc::new(sink);
        Ok(self)
    }
}
