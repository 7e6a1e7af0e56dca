//! tower-activity (skeleton; crate docs come with the layer).
#![deny(missing_docs, unreachable_pub, unsafe_code)]

mod pricing;
mod protocol;
mod provider;
mod record;
mod sink;
mod sse;
mod writer;

pub use pricing::{ModelPrice, PriceError, PriceTable, TokenUsage};
pub use provider::ProviderRules;
pub use record::{
    ActivityError, ActivityRecord, Api, FinishReason, Kind, MAX_ERROR_MESSAGE, Outcome, UsageSource,
};
pub use sink::{ActivitySink, SinkError};
pub use writer::{ActivityWriter, WriterConfig, WriterStats};
