//! [`NatsError`]: why a NATS connection, stream or consumer could not be set up.

use std::fmt;

use async_nats::jetstream;
use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind};

use crate::sink::BoxError;

/// Why [`NatsSink`](super::NatsSink) or the ingester could not start: what was attempted,
/// the cause, and what to check.
#[derive(Debug)]
pub struct NatsError {
    what: String,
    hint: &'static str,
    cause: BoxError,
}

impl NatsError {
    pub(crate) fn new(what: String, hint: &'static str, cause: impl Into<BoxError>) -> Self {
        NatsError {
            what,
            hint,
            cause: cause.into(),
        }
    }

    /// Whether trying again may succeed: JetStream answered that it is temporarily
    /// unavailable (a cluster electing a leader after losing a server), or a request timed
    /// out. A stream or consumer that exists with another configuration, a subject the stream
    /// does not take, a server without JetStream or no server at all is not transient.
    ///
    /// Setting up a stream or consumer ([`NatsSinkBuilder::build`](super::NatsSinkBuilder::build),
    /// [`Ingester::connect`](crate::ingest::Ingester::connect)) already tries again through
    /// transient errors for up to 30 s before returning one.
    pub fn is_transient(&self) -> bool {
        if let Some(e) = self.cause.downcast_ref::<CreateStreamError>() {
            return stream_transient(e);
        }
        if let Some(e) = self.cause.downcast_ref::<ConsumerError>() {
            return consumer_transient(e);
        }
        false
    }
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.what, self.cause, self.hint)
    }
}

impl std::error::Error for NatsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// JetStream's "temporarily unavailable" (status 503, code 10008).
fn unavailable(error: &jetstream::Error) -> bool {
    error.code() == 503 || error.kind() == jetstream::ErrorCode::CLUSTER_NOT_AVAILABLE
}

/// Whether creating or looking up a stream may succeed if tried again.
fn stream_transient(error: &CreateStreamError) -> bool {
    match error.kind() {
        CreateStreamErrorKind::TimedOut => true,
        CreateStreamErrorKind::JetStream(e) => unavailable(&e),
        _ => false,
    }
}

/// Whether creating or looking up a consumer may succeed if tried again.
fn consumer_transient(error: &ConsumerError) -> bool {
    match error.kind() {
        ConsumerErrorKind::TimedOut => true,
        ConsumerErrorKind::JetStream(e) => unavailable(&e),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JetStream's error as the server sends it.
    fn answered(code: usize, err_code: u64, description: &str) -> jetstream::Error {
        serde_json::from_value(serde_json::json!({
            "code": code, "err_code": err_code, "description": description
        }))
        .expect("a JetStream error")
    }

    #[test]
    fn temporarily_unavailable_and_timeouts_are_transient_the_rest_not() {
        let busy = answered(503, 10008, "JetStream system temporarily unavailable");
        let exists = answered(400, 10148, "consumer already exists");
        let stream = |kind| CreateStreamError::new(kind);
        assert!(stream_transient(&stream(CreateStreamErrorKind::JetStream(
            busy.clone()
        ))));
        assert!(stream_transient(&stream(CreateStreamErrorKind::TimedOut)));
        assert!(!stream_transient(&stream(
            CreateStreamErrorKind::JetStream(exists.clone())
        )));
        // No responders: a server without JetStream, which waiting does not change.
        assert!(!stream_transient(&stream(
            CreateStreamErrorKind::JetStreamUnavailable
        )));
        let consumer = |kind| ConsumerError::new(kind);
        assert!(consumer_transient(&consumer(ConsumerErrorKind::JetStream(
            busy
        ))));
        assert!(consumer_transient(&consumer(ConsumerErrorKind::TimedOut)));
        assert!(!consumer_transient(&consumer(
            ConsumerErrorKind::JetStream(exists)
        )));
        assert!(!consumer_transient(&consumer(
            ConsumerErrorKind::InvalidName
        )));
        // What the error says of itself is read from its cause.
        let error = |cause: BoxError| NatsError::new("open".into(), "check", cause);
        assert!(error(Box::new(stream(CreateStreamErrorKind::TimedOut))).is_transient());
        assert!(error(Box::new(consumer(ConsumerErrorKind::TimedOut))).is_transient());
        assert!(!error("no server answered".into()).is_transient());
    }
}
