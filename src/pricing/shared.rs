//! A price table that can be replaced while requests are being priced.

use std::sync::{Arc, PoisonError, RwLock};

use super::PriceTable;

/// The price table of one or more layers, replaceable at run time (a price file reloaded on
/// SIGHUP) without restarting anything.
///
/// Each record is priced from one table: the layer takes [`current`](Self::current) once per
/// record, and [`replace`](Self::replace) swaps the whole table in one step, so no request is
/// ever priced from part of an old table and part of a new one. Clones share the table.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_activity::ActivityLayer;
/// use tower_activity::pricing::{PriceTable, SharedPrices};
/// use tower_activity::sink::MemorySink;
///
/// let prices = SharedPrices::new(PriceTable::default());
/// let layer = ActivityLayer::builder(MemorySink::new()).prices(prices.clone()).build();
/// // Later, from a reload task:
/// let newer = PriceTable::from_litellm_json(
///     r#"{"my-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}"#,
/// )
/// .unwrap()
/// .named("prices.json", Some("2026-12-02T00:00:00Z"));
/// let old = prices.replace(newer);
/// assert!(old.lookup("gpt-4o").is_some());
/// assert_eq!(prices.current().source().source, "prices.json");
/// # let _ = layer;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SharedPrices {
    table: Arc<RwLock<Arc<PriceTable>>>,
}

impl SharedPrices {
    /// A shared handle on `table`.
    pub fn new(table: impl Into<Arc<PriceTable>>) -> Self {
        SharedPrices {
            table: Arc::new(RwLock::new(table.into())),
        }
    }

    /// The table of the moment; a [`replace`](Self::replace) after this call does not change
    /// what it returned.
    pub fn current(&self) -> Arc<PriceTable> {
        // The lock only guards an `Arc` swap, which cannot leave it half-written: a poisoned
        // lock still holds a whole table.
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `table` in place for every record priced from now on; returns the table it
    /// replaces.
    pub fn replace(&self, table: impl Into<Arc<PriceTable>>) -> Arc<PriceTable> {
        let mut slot = self.table.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, table.into())
    }
}

impl Default for SharedPrices {
    /// The embedded table ([`PriceTable::default`]).
    fn default() -> Self {
        SharedPrices::new(PriceTable::default())
    }
}

impl From<PriceTable> for SharedPrices {
    fn from(table: PriceTable) -> Self {
        SharedPrices::new(table)
    }
}

impl From<Arc<PriceTable>> for SharedPrices {
    fn from(table: Arc<PriceTable>) -> Self {
        SharedPrices::new(table)
    }
}
