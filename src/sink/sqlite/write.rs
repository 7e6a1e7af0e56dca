//! A batch into SQLite: one transaction, multi-row inserts (statements prepared once) that
//! return the ids they inserted, then the rollup rows of the records actually inserted,
//! their money added in Rust.
//!
//! sqlx runs each SQLite connection on a thread of its own and sends it one message per
//! statement: an insert per record cost a round trip between threads (two context switches)
//! per record, on the two cores the requests need. Rows go 64 to a statement instead
//! (`scripts/peer-c8.sh`, BENCHMARKS.md "Closed loop, 8 connections").

use std::collections::{BTreeMap, HashSet};

use rust_decimal::Decimal;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{INSERT_ROWS, Sql};
use crate::record::ActivityRecord;
use crate::sink::SinkError;
use crate::sink::sql::{EncodedRecord, decimal, sink_error};

fn classify(error: sqlx::Error) -> SinkError {
    sink_error::<Sqlite>(error)
}

/// The rollup key: user, day, kind, model, provider.
type Key<'a> = (
    Option<&'a str>,
    String,
    &'static str,
    Option<&'a str>,
    Option<&'a str>,
);

/// A rollup row's sums.
#[derive(Debug, Default)]
struct Sums {
    requests: i64,
    input: i64,
    output: i64,
    total: i64,
    cost: Decimal,
}

impl Sums {
    fn add(&mut self, other: &Sums) -> Result<(), SinkError> {
        let overflow = || SinkError::permanent("activity_daily sums overflow");
        self.requests = self
            .requests
            .checked_add(other.requests)
            .ok_or_else(overflow)?;
        self.input = self.input.checked_add(other.input).ok_or_else(overflow)?;
        self.output = self.output.checked_add(other.output).ok_or_else(overflow)?;
        self.total = self.total.checked_add(other.total).ok_or_else(overflow)?;
        self.cost = self.cost.checked_add(other.cost).ok_or_else(overflow)?;
        Ok(())
    }
}

pub(super) async fn write(
    pool: &SqlitePool,
    sql: &Sql,
    records: &[ActivityRecord],
) -> Result<(), SinkError> {
    let encoded = records
        .iter()
        .map(EncodedRecord::new)
        .collect::<Result<Vec<_>, _>>()?;
    // The first statement is a write, so the transaction takes the write lock at once and a
    // busy database is waited for (busy_timeout), not failed.
    let mut tx = pool.begin().await.map_err(classify)?;
    let mut groups: BTreeMap<Key<'_>, Sums> = BTreeMap::new();
    let mut rest = &encoded[..];
    while !rest.is_empty() {
        // The largest power of two that fits: 64, 64 … then 32, 16 … for the rest.
        let k = rest.len().min(INSERT_ROWS).ilog2();
        let (chunk, tail) = rest.split_at(1 << k);
        rest = tail;
        let query = chunk
            .iter()
            .fold(sqlx::query(&sql.insert[k as usize]), bind_record);
        let inserted = query.fetch_all(&mut *tx).await.map_err(classify)?;
        // Records already stored (a retried batch, a replayed spool) are not counted again,
        // nor the second of two with one id (the first is the one inserted).
        let mut fresh: Option<HashSet<Uuid>> = (inserted.len() < chunk.len())
            .then(|| inserted.iter().map(|row| row.try_get(0)).collect())
            .transpose()
            .map_err(classify)?;
        for e in chunk {
            if fresh.as_mut().is_some_and(|ids| !ids.remove(&e.id)) {
                continue;
            }
            let key = (
                e.user_id.as_deref(),
                e.timestamp.date_naive().to_string(),
                e.kind,
                e.model.as_deref(),
                e.provider.as_deref(),
            );
            let one = Sums {
                requests: 1,
                input: e.tokens[0].unwrap_or(0),
                output: e.tokens[1].unwrap_or(0),
                total: e.stats_tokens(),
                cost: e
                    .cost_usd
                    .as_deref()
                    .map(decimal)
                    .transpose()
                    .map_err(SinkError::Permanent)?
                    .unwrap_or_default(),
            };
            groups.entry(key).or_default().add(&one)?;
        }
    }
    for ((user, day, kind, model, provider), sums) in groups {
        let existing = sqlx::query(&sql.rollup_get)
            .bind(user)
            .bind(&day)
            .bind(kind)
            .bind(model)
            .bind(provider)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        match existing {
            Some(row) => {
                let mut total = Sums {
                    requests: row.try_get(1).map_err(classify)?,
                    input: row.try_get(2).map_err(classify)?,
                    output: row.try_get(3).map_err(classify)?,
                    total: row.try_get(4).map_err(classify)?,
                    cost: decimal(row.try_get(5).map_err(classify)?)
                        .map_err(SinkError::Permanent)?,
                };
                total.add(&sums)?;
                sqlx::query(&sql.rollup_update)
                    .bind(row.try_get::<i64, _>(0).map_err(classify)?)
                    .bind(total.requests)
                    .bind(total.input)
                    .bind(total.output)
                    .bind(total.total)
                    .bind(total.cost.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
            None => {
                sqlx::query(&sql.rollup_insert)
                    .bind(user)
                    .bind(&day)
                    .bind(kind)
                    .bind(model)
                    .bind(provider)
                    .bind(sums.requests)
                    .bind(sums.input)
                    .bind(sums.output)
                    .bind(sums.total)
                    .bind(sums.cost.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
        }
    }
    tx.commit().await.map_err(classify)
}

/// Binds the 34 columns in the shared order.
fn bind_record<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    e: &'q EncodedRecord<'_>,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    let [input, output, total, cache_read, cache_write, reasoning] = e.tokens;
    query
        .bind(e.id)
        .bind(e.kind)
        .bind(e.timestamp.timestamp_micros())
        .bind(e.user_id.as_deref())
        .bind(e.session_id.as_deref())
        .bind(&*e.app)
        .bind(&*e.endpoint)
        .bind(e.api)
        .bind(e.model.as_deref())
        .bind(e.provider.as_deref())
        .bind(e.upstream.as_deref())
        .bind(e.stream)
        .bind(e.status_code)
        .bind(e.outcome)
        .bind(e.finish_reason)
        .bind(e.native_finish_reason.as_deref())
        .bind(input)
        .bind(output)
        .bind(total)
        .bind(cache_read)
        .bind(cache_write)
        .bind(reasoning)
        .bind(e.usage_source)
        .bind(e.cost_usd.as_deref())
        .bind(e.ttft_ms)
        .bind(e.latency_ms)
        .bind(e.speed)
        .bind(e.error_type.as_deref())
        .bind(e.error_message.as_deref())
        .bind(e.metadata.as_str())
        .bind(e.service_tier.as_deref())
        .bind(e.cost_source)
        .bind(e.cost_details.as_deref())
        .bind(e.usage_details.as_deref())
}
