//! Pricing a finished record: the layer's one use of the table.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use super::{PriceTable, TokenUsage};
use crate::record::{ActivityRecord, CostSource};

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
        let computed = r
            .model
            .as_deref()
            .and_then(|m| self.lookup(m)?.1.priced_parts(usage));
        let Some(computed) = computed else {
            r.metadata
                .insert("pricing".into(), Value::from("unknown_model"));
            if let Some(cost) = reported {
                r.cost_usd = Some(cost);
                r.cost_source = Some(CostSource::Reported);
            }
            return;
        };
        r.metadata
            .insert("price_table".into(), self.source_json().clone());
        if let Some(part) = computed.unpriced {
            r.metadata
                .insert("unpriced".into(), Value::from(vec![part]));
        }
        // Inserted one by one: collecting would sort the entries in a vector of its own first.
        let mut details = BTreeMap::new();
        for (name, amount) in computed.iter() {
            details.insert(name.to_owned(), amount);
        }
        match reported {
            Some(cost) => {
                details.insert("computed".into(), computed.total);
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
