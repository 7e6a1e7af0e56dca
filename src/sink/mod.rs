//! Placeholder: sinks are being written.

use async_trait::async_trait;

use crate::record::ActivityRecord;

/// Why a sink could not write a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (a lost connection, a timeout).
    #[error("transient sink failure: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Retrying the same records will fail again (a constraint, a bad value).
    #[error("permanent sink failure: {0}")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where records go.
#[async_trait]
pub trait ActivitySink: Send + Sync + 'static {
    /// Writes a batch; must be idempotent on `record.id`.
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError>;
}
