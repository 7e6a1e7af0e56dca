//! Pricing a finished record: the layer's one use of the table.

use serde_json::Value;

use super::{PriceTable, TokenUsage};
use crate::record::{ActivityRecord, CostSource};

impl PriceTable {
    /// Sets `r.cost_usd` from its token counts and model, or notes in its `metadata` that the
    /// model has no price (`"pricing": "unknown_model"`) — never a made-up figure.
    pub(crate) fn price_record(&self, r: &mut ActivityRecord) {
        let usage = TokenUsage {
            input: r.input_tokens.unwrap_or(0),
            output: r.output_tokens.unwrap_or(0),
            cache_read: r.cache_read_tokens.unwrap_or(0),
            cache_write: r.cache_write_tokens.unwrap_or(0),
            reasoning: r.reasoning_tokens.unwrap_or(0),
        };
        r.cost_usd = r.model.as_deref().and_then(|m| self.cost(m, &usage));
        r.cost_source = r.cost_usd.map(|_| CostSource::Computed);
        if r.cost_usd.is_none() {
            r.metadata
                .insert("pricing".into(), Value::from("unknown_model"));
        }
    }
}
