//! `PRICES_FILE`: the gateway's prices from a current LiteLLM JSON
//! (`model_prices_and_context_window.json`), loaded at start and again on `SIGHUP`.
//!
//! The file's table is used on its own (not merged over the embedded one): what bills is
//! exactly what the operator gave. A reload swaps the whole table at once
//! ([`SharedPrices::replace`]): each record is priced from one table, never from part of the
//! old one and part of the new. A file that cannot be read or parsed keeps the table in use and
//! logs why (a bad file at start stops the gateway with the cause instead). Every record priced
//! from the file names it in `metadata.price_table`: `source` is the path and the first 16 hex
//! digits of the content's SHA-256, `date` the file's modification time (UTC), so a bill can be
//! traced to the exact prices it came from.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tower_activity::pricing::{PriceTable, SharedPrices, TableSource};

/// A price file and the table loaded from it.
#[derive(Debug, Clone)]
pub struct PriceFile {
    path: PathBuf,
    prices: SharedPrices,
}

impl PriceFile {
    /// Loads `path`; `Err` is a one-line cause naming `PRICES_FILE`, the path and what to fix.
    pub fn open(path: impl Into<PathBuf>) -> Result<PriceFile, String> {
        let path = path.into();
        let table = load(&path)?;
        Ok(PriceFile {
            path,
            prices: SharedPrices::new(table),
        })
    }

    /// The table the activity layer prices from (replaced by [`reload`](Self::reload)).
    pub fn prices(&self) -> &SharedPrices {
        &self.prices
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file again and puts its table in place; on any error the table in use stays
    /// and the error says why.
    pub fn reload(&self) -> Result<TableSource, String> {
        let table = load(&self.path)?;
        let source = table.source().clone();
        self.prices.replace(table);
        Ok(source)
    }

    /// Reloads on every `SIGHUP` until the task is aborted, logging each outcome. The handler
    /// is in place when this returns (a `SIGHUP` right after cannot end the process).
    pub fn reload_on_sighup(&self) -> std::io::Result<JoinHandle<()>> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangup = signal(SignalKind::hangup())?;
            let file = self.clone();
            Ok(tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    file.reload_and_log();
                }
            }))
        }
        #[cfg(not(unix))]
        {
            Ok(tokio::spawn(async {}))
        }
    }

    /// [`reload`](Self::reload), logged.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(source) => tracing::info!(
                source = %source.source,
                date = source.date.as_deref().unwrap_or("unknown"),
                models = self.prices.current().len(),
                "PRICES_FILE reloaded"
            ),
            Err(e) => {
                let kept = self.prices.current();
                tracing::warn!(
                    "{e}; the prices in use stay ({}, {})",
                    kept.source().source,
                    kept.source().date.as_deref().unwrap_or("undated")
                );
            }
        }
    }
}

/// The table in `path`, named after the path, its content's hash and its modification time.
pub fn load(path: &Path) -> Result<PriceTable, String> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| format!("PRICES_FILE {shown}: cannot read it ({e}); fix the path"))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        format!("PRICES_FILE {shown}: not UTF-8 ({e}); give LiteLLM's model_prices_and_context_window.json")
    })?;
    let table = PriceTable::from_litellm_json(text)
        .map_err(|e| format!("PRICES_FILE {shown}: not a LiteLLM price table: {e}"))?;
    let hash = Sha256::digest(&bytes);
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true));
    Ok(table.named(format!("{shown} (sha256 {hex})"), modified.as_deref()))
}
