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
}

impl NatsError {
    pub(crate) fn new(what: String, hint: &'static str, cause: impl Into<BoxError>) -> Self {
        NatsError {
            what,
            hint,
            cause: cause.into(),
        }
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
