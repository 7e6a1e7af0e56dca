//! [`NatsError`]: why a NATS connection, stream or consumer could not be set up.

use std::fmt;

use crate::sink::BoxError;

/// Why [`NatsSink`](super::NatsSink) or the ingester could not start: what was attempted,
/// the cause, and what to check.
#[derive(Debug)]
pub struct NatsError {
    what: String,
    hint: &'static str,
    cause: BoxError,
    transient: bool,
}

impl NatsError {
    pub(crate) fn new(what: String, hint: &'static str, cause: impl Into<BoxError>) -> Self {
        NatsError {
            what,
            hint,
            cause: cause.into(),
            transient: false,
        }
    }

    /// The same error, marked [transient](Self::is_transient) when `transient`.
    pub(crate) fn transient_if(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
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
        self.transient
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
