//! Pricing a finished record: the layer's one use of the table.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

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
            .and_then(|m| self.cost_breakdown(m, usage));
        let Some(computed) = computed else {
            r.metadata
                .insert("pricing".into(), Value::from("unknown_model"));
            if let Some(cost) = reported {
                r.cost_usd = Some(cost);
                r.cost_source = Some(CostSource::Reported);
            }
            return;
        };
        let table = self.source();
        r.metadata.insert(
            "price_table".into(),
            json!({ "source": table.source, "date": table.date }),
        );
        if !computed.unpriced.is_empty() {
            r.metadata
                .insert("unpriced".into(), Value::from(computed.unpriced.clone()));
        }
        let mut details: BTreeMap<String, Decimal> = computed
            .parts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
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
