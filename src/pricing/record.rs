//! Pricing a finished record: the layer's one use of the table.

use rust_decimal::Decimal;
use serde_json::Value;

use super::{PriceTable, TokenUsage};
use crate::record::{ActivityRecord, CostDetails, CostSource};

impl PriceTable {
    /// Sets `r.cost_usd`, `r.cost_source` and `r.cost_details` for `usage`.
    ///
    /// A cost the provider `reported` is the record's cost (`reported`); the table's figure
    /// then goes beside it in `cost_details` (its parts and their sum under `computed`).
    /// Otherwise the table's figure is the cost (`computed`) and `cost_details` holds its
    /// parts, which add up to it exactly. A model the table does not know is noted in
    /// `metadata` (`"pricing": "unknown_model"`) — never a made-up figure — and parts the
    /// model has no price for under `"unpriced"`. Whenever the table's figure is used, the
    /// table's name goes into `metadata.price_table` (`{"source", "date"}`), so the bill can
    /// be audited against the prices it came from.
    pub(crate) fn price_record(
        &self,
        r: &mut ActivityRecord,
        usage: &TokenUsage,
        reported: Option<Decimal>,
    ) {
        // The parts go straight into the record's `cost_details`, in the order it keeps them.
        let mut details = CostDetails::new();
        let computed = r.model.as_deref().and_then(|m| {
            let price = self.lookup(m)?.1;
            price.priced_parts(usage, |name, amount| details.push_in_order(name, amount))
        });
        let Some(computed) = computed else {
            r.metadata
                .insert("pricing".into(), Value::from("unknown_model"));
            if let Some(cost) = reported {
                r.cost_usd = Some(cost);
                r.cost_source = Some(CostSource::Reported);
            }
            return;
        };
        r.metadata.share_price_table(self.source_json().clone());
        if let Some(part) = computed.unpriced {
            r.metadata
                .insert("unpriced".into(), Value::from(vec![part]));
        }
        match reported {
            Some(cost) => {
                details.insert("computed", computed.total);
                r.cost_usd = Some(cost);
                r.cost_source = Some(CostSource::Reported);
            }
            None => {
                r.cost_usd = Some(computed.total);
                r.cost_source = Some(CostSource::Computed);
            }
        }
        r.cost_details = Some(details);
    }
}
