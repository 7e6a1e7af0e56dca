//! Where a price table came from: named in every record it prices (`metadata.price_table`), so
//! a bill can be audited against the exact prices it was computed from.

use serde::{Deserialize, Serialize};

/// The name of a [`PriceTable`](super::PriceTable): where its prices come from and as of when.
///
/// Every record whose cost the table computed carries it as `metadata.price_table`
/// (`{"source": …, "date": …}`). The embedded table names itself after its LiteLLM versions and
/// generation date; a table loaded at run time is named by whoever loads it
/// ([`PriceTable::named`](super::PriceTable::named)), e.g. with the file's path and its
/// modification time.
///
/// ```
/// use tower_activity::pricing::PriceTable;
///
/// let source = PriceTable::embedded().source();
/// assert!(source.source.starts_with("embedded: LiteLLM 1.110.2"));
/// assert_eq!(source.date.as_deref(), Some("2026-12-01"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSource {
    /// Where the prices come from (`embedded: LiteLLM 1.110.2, 1.74.0`, a file path …).
    pub source: String,
    /// As of when (a date or an RFC 3339 time), `None` when unknown.
    pub date: Option<String>,
}

impl TableSource {
    /// The name of a table nobody named (`source: "unnamed"`, no date).
    pub fn unnamed() -> Self {
        TableSource {
            source: "unnamed".to_owned(),
            date: None,
        }
    }

    /// The embedded table's name, from its `_meta` entry (the LiteLLM versions it was
    /// generated from, newest first, and the generation date).
    pub(crate) fn of_generated(json: &str) -> Self {
        #[derive(Deserialize)]
        struct File {
            #[serde(rename = "_meta")]
            meta: Option<Meta>,
        }
        #[derive(Deserialize)]
        struct Meta {
            generated: Option<String>,
            #[serde(default)]
            sources: Vec<Source>,
        }
        #[derive(Deserialize)]
        struct Source {
            litellm_version: String,
        }
        let Ok(File { meta: Some(meta) }) = serde_json::from_str::<File>(json) else {
            return TableSource::unnamed();
        };
        let versions: Vec<&str> = meta
            .sources
            .iter()
            .map(|s| s.litellm_version.as_str())
            .collect();
        TableSource {
            source: format!("embedded: LiteLLM {}", versions.join(", ")),
            date: meta.generated,
        }
    }
}
