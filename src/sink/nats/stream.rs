//! [`StreamConfig`]: the JetStream stream the records go through, shared by [`NatsSink`]
//! (which publishes into it) and the ingester (which consumes it); and the connection both use.
//!
//! [`NatsSink`]: super::NatsSink

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::NatsError;

/// The JetStream stream of activity records: its name, the subject records are published on,
/// and how it is created when missing. The defaults are those of the gateway and the `ingest`
/// program.
///
/// | field | default | meaning |
/// |---|---|---|
/// | [`name`](Self::name) | `ACTIVITY` | the stream |
/// | [`subject`](Self::subject) | `activity.records` | the subject every record is published on |
/// | [`replicas`](Self::replicas) | 1 | copies of each message in a cluster (3 survives the loss of a node); only used when the stream is created |
/// | [`duplicate_window`](Self::duplicate_window) | 2 min | how long JetStream remembers a `Nats-Msg-Id` to drop a republished record |
/// | [`max_age`](Self::max_age) | 7 days | how long a message is kept, consumed or not (the backlog an ingester outage may build up) |
///
/// An existing stream is used as it is (its replicas and limits are not changed), provided it
/// takes the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamConfig {
    /// The stream's name (no spaces, `.`, `*` or `>`). Default `ACTIVITY`.
    pub name: String,
    /// The subject records are published on. Default `activity.records`.
    pub subject: String,
    /// Replicas of each message when the stream is created. Default 1.
    pub replicas: usize,
    /// JetStream's duplicate window when the stream is created. Default 2 minutes.
    pub duplicate_window: Duration,
    /// Message age limit when the stream is created. Default 7 days.
    pub max_age: Duration,
}

/// The default stream name.
pub const DEFAULT_STREAM: &str = "ACTIVITY";
/// The default subject.
pub const DEFAULT_SUBJECT: &str = "activity.records";

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: DEFAULT_STREAM.to_owned(),
            subject: DEFAULT_SUBJECT.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl StreamConfig {
    /// Sets [`name`](Self::name).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets [`subject`](Self::subject).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets [`replicas`](Self::replicas).
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets [`duplicate_window`](Self::duplicate_window).
    pub fn with_duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Sets [`max_age`](Self::max_age).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The stream, created with this configuration if missing; an existing stream must take
    /// [`subject`](Self::subject).
    pub(crate) async fn ensure(
        &self,
        jetstream: &jetstream::Context,
    ) -> Result<stream::Stream, NatsError> {
        let config = stream::Config {
            name: self.name.clone(),
            subjects: vec![self.subject.clone()],
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            ..Default::default()
        };
        let stream = jetstream.get_or_create_stream(config).await.map_err(|e| {
            NatsError::new(
                format!(
                    "cannot open or create the JetStream stream {} (subject {}, {} replica(s))",
                    self.name, self.subject, self.replicas
                ),
                "is JetStream enabled (`nats-server -js`), and are there as many servers as replicas?",
                e,
            )
        })?;
        let subjects = &stream.cached_info().config.subjects;
        if !subjects
            .iter()
            .any(|pattern| subject_matches(pattern, &self.subject))
        {
            return Err(NatsError::new(
                format!(
                    "the JetStream stream {} does not take subject {} (its subjects: {subjects:?})",
                    self.name, self.subject
                ),
                "name another stream, or a subject the stream takes",
                "subject mismatch",
            ));
        }
        Ok(stream)
    }
}

/// Connects to `urls`: one NATS URL or several separated by commas (the servers of a cluster;
/// the client also learns the others from the server it reaches). Fails at once when none
/// answers; once connected, the client reconnects by itself for as long as it lives.
pub(crate) async fn connect(urls: &str, name: &str) -> Result<async_nats::Client, NatsError> {
    let servers: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    let cannot = |e: &dyn std::fmt::Display| {
        NatsError::new(
            format!("cannot connect to NATS at {urls}"),
            "is nats-server running there (with -js)?",
            e.to_string(),
        )
    };
    if servers.is_empty() {
        return Err(cannot(&"no URL given"));
    }
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .connect(servers)
        .await
        .map_err(|e| cannot(&e))
}

/// Whether NATS subject `subject` matches `pattern` (`*` one token, `>` the rest).
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_nats_wildcards() {
        assert!(subject_matches("activity.records", "activity.records"));
        assert!(subject_matches("activity.*", "activity.records"));
        assert!(subject_matches("activity.>", "activity.records.eu"));
        assert!(subject_matches(">", "activity"));
        assert!(!subject_matches("activity.*", "activity.records.eu"));
        assert!(!subject_matches("activity.records", "activity"));
        assert!(!subject_matches("activity", "activity.records"));
        assert!(!subject_matches("activity.>", "activity"));
        assert!(!subject_matches("other.records", "activity.records"));
    }
}
