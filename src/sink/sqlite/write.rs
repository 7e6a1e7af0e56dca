//! A batch into SQLite: one transaction, multi-row inserts (statements prepared once), then
//! the rollup rows of the records actually inserted, their money added in Rust.
//!
//! sqlx runs each SQLite connection on a thread of its own and sends it one message per
//! statement: an insert per record cost a round trip between threads (two context switches)
//! per record, on the two cores the requests need. Rows go 64 to a statement instead
//! (`scripts/peer-c8.sh`, BENCHMARKS.md "Closed loop, 8 connections").
//!
//! Which records were inserted: nearly always all of them, and each insert's count of changed
//! rows says so without a row back per record (`RETURNING id` cost sqlx a row object, a copied
//! value and a message between threads per record). When an insert stored fewer rows than it
//! carried (a retried batch, a replayed spool, one id twice), the transaction is rolled back
//! and the batch inserted again with `RETURNING id`, which tells the new rows from the others.
//!
//! Values are bound by value: the text the encoding made (metadata, cost, details) is moved
//! into the statement's arguments, where sqlx would copy a borrowed text once more before
//! sending it to the connection's thread.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{Arguments, Row, SqlitePool, Transaction};
use uuid::Uuid;

use super::{INSERT_ROWS, Sql, position};
use crate::record::{ActivityRecord, CostSource, FinishReason, LlmApi, Outcome, UsageSource};
use crate::sink::SinkError;
use crate::sink::sql::{
    APIS, COLUMNS, COST_SOURCES, EncodedRecord, FINISH_REASONS, KINDS, OUTCOMES, USAGE_SOURCES,
    decimal, kind_name, sink_error,
};

fn classify(error: sqlx::Error) -> SinkError {
    sink_error::<Sqlite>(error)
}

/// The rollup key: user, UTC day, kind, model, provider (as stored: NUL characters replaced).
type Key<'a> = (
    Option<Cow<'a, str>>,
    NaiveDate,
    &'static str,
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
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

/// What one record adds to the rollup, taken before its encoding is moved into a statement.
struct Entry<'a> {
    id: Uuid,
    key: Key<'a>,
    sums: Sums,
}

impl<'a> Entry<'a> {
    fn new(record: &ActivityRecord, e: &EncodedRecord<'a>) -> Self {
        Entry {
            id: e.id,
            key: (
                e.user_id.clone(),
                e.timestamp.date_naive(),
                e.kind,
                e.model.clone(),
                e.provider.clone(),
            ),
            sums: Sums {
                requests: 1,
                input: e.tokens[0].unwrap_or(0),
                output: e.tokens[1].unwrap_or(0),
                total: e.stats_tokens(),
                // The record's own decimal: the column's text is its `to_string`.
                cost: record.cost_usd.unwrap_or_default(),
            },
        }
    }
}

/// `records` in the statements that carry them: each with its size `k` (`2^k` records), the
/// largest power of two up to [`INSERT_ROWS`] that fits (64, 64 … then 32, 16 … for the rest).
fn statements(records: &[ActivityRecord]) -> impl Iterator<Item = (usize, &[ActivityRecord])> {
    let mut left = records;
    std::iter::from_fn(move || {
        let k = left.len().min(INSERT_ROWS).checked_ilog2()? as usize;
        let (rows, rest) = left.split_at(1 << k);
        left = rest;
        Some((k, rows))
    })
}

/// The statement `sql` over `records` (as many as it has rows), each record encoded as it is
/// bound and what it adds to the rollup pushed to `entries`.
///
/// A batch is encoded a statement at a time, not all of it before the first statement: the
/// writer's thread then works ≈ 64 records' worth, waits for SQLite's thread, and so on,
/// instead of running a thousand records' encoding (milliseconds) in one stretch on the CPUs
/// the requests need; and no vector of every encoded record is allocated.
fn statement<'q, 'a: 'q>(
    sql: &'q str,
    records: &'a [ActivityRecord],
    entries: &mut Vec<Entry<'a>>,
) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>, SinkError> {
    // The arguments' vector at its size at once, not grown (and copied) a dozen times.
    let mut args = SqliteArguments::default();
    args.reserve(COLUMNS.len() * records.len(), 0);
    for record in records {
        let e = EncodedRecord::new(record)?;
        entries.push(Entry::new(record, &e));
        bind_record(&mut args, e).map_err(SinkError::permanent)?;
    }
    Ok(sqlx::query_with(sql, args))
}

pub(super) async fn write(
    pool: &SqlitePool,
    sql: &Sql,
    records: &[ActivityRecord],
) -> Result<(), SinkError> {
    // The first statement is a write, so the transaction takes the write lock at once and a
    // busy database is waited for (busy_timeout), not failed.
    let mut tx = pool.begin().await.map_err(classify)?;
    let mut entries = Vec::with_capacity(records.len());
    let mut all_new = true;
    for (k, rows) in statements(records) {
        let done = statement(&sql.insert[k], rows, &mut entries)?
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        if done.rows_affected() < 1 << k {
            all_new = false;
            break;
        }
    }
    if !all_new {
        tx.rollback().await.map_err(classify)?;
        tx = pool.begin().await.map_err(classify)?;
        entries = insert_returning(&mut tx, sql, records).await?;
    }
    rollup(&mut tx, sql, entries).await?;
    tx.commit().await.map_err(classify)
}

/// Inserts `records` with `RETURNING id`; returns the rollup entries of those inserted.
/// Records already stored (a retried batch, a replayed spool) are not counted again, nor the
/// second of two with one id (the first is the one inserted).
async fn insert_returning<'a>(
    tx: &mut Transaction<'static, Sqlite>,
    sql: &Sql,
    records: &'a [ActivityRecord],
) -> Result<Vec<Entry<'a>>, SinkError> {
    let mut fresh = Vec::with_capacity(records.len());
    let mut entries = Vec::with_capacity(INSERT_ROWS);
    for (k, rows) in statements(records) {
        let inserted = statement(&sql.insert_returning[k], rows, &mut entries)?
            .fetch_all(&mut **tx)
            .await
            .map_err(classify)?;
        let mut ids: Option<HashSet<Uuid>> = (inserted.len() < 1 << k)
            .then(|| inserted.iter().map(|row| row.try_get(0)).collect())
            .transpose()
            .map_err(classify)?;
        for entry in entries.drain(..) {
            if ids.as_mut().is_none_or(|ids| ids.remove(&entry.id)) {
                fresh.push(entry);
            }
        }
    }
    Ok(fresh)
}

/// Adds the entries to their rollup rows: one read per key, then an update or an insert.
async fn rollup(
    tx: &mut Transaction<'static, Sqlite>,
    sql: &Sql,
    entries: Vec<Entry<'_>>,
) -> Result<(), SinkError> {
    let mut groups: BTreeMap<Key<'_>, Sums> = BTreeMap::new();
    for entry in entries {
        groups.entry(entry.key).or_default().add(&entry.sums)?;
    }
    for ((user, day, kind, model, provider), sums) in groups {
        let day = day.to_string();
        let existing = sqlx::query(&sql.rollup_get)
            .bind(user.as_deref())
            .bind(day.as_str())
            .bind(kind)
            .bind(model.as_deref())
            .bind(provider.as_deref())
            .fetch_optional(&mut **tx)
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
                    .execute(&mut **tx)
                    .await
                    .map_err(classify)?;
            }
            None => {
                sqlx::query(&sql.rollup_insert)
                    .bind(user)
                    .bind(day)
                    .bind(kind)
                    .bind(model)
                    .bind(provider)
                    .bind(sums.requests)
                    .bind(sums.input)
                    .bind(sums.output)
                    .bind(sums.total)
                    .bind(sums.cost.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(classify)?;
            }
        }
    }
    Ok(())
}

/// Adds the 34 columns in the shared order to `args`, moving the values in; an enum as the
/// position of its name ([`position`]).
fn bind_record<'q>(
    args: &mut SqliteArguments<'q>,
    e: EncodedRecord<'q>,
) -> Result<(), BoxDynError> {
    let [input, output, total, cache_read, cache_write, reasoning] = e.tokens;
    args.add(e.id)?;
    args.add(position(&KINDS, kind_name, e.kind)?)?;
    args.add(e.timestamp.timestamp_micros())?;
    args.add(e.user_id)?;
    args.add(e.session_id)?;
    args.add(e.app)?;
    args.add(e.endpoint)?;
    args.add(position(&APIS, LlmApi::as_str, e.api)?)?;
    args.add(e.model)?;
    args.add(e.provider)?;
    args.add(e.upstream)?;
    args.add(e.stream)?;
    args.add(e.status_code)?;
    args.add(position(&OUTCOMES, Outcome::as_str, e.outcome)?)?;
    args.add(
        e.finish_reason
            .map(|f| position(&FINISH_REASONS, FinishReason::as_str, f))
            .transpose()?,
    )?;
    args.add(e.native_finish_reason)?;
    args.add(input)?;
    args.add(output)?;
    args.add(total)?;
    args.add(cache_read)?;
    args.add(cache_write)?;
    args.add(reasoning)?;
    args.add(position(
        &USAGE_SOURCES,
        UsageSource::as_str,
        e.usage_source,
    )?)?;
    args.add(e.cost_usd)?;
    args.add(e.ttft_ms)?;
    args.add(e.latency_ms)?;
    args.add(e.speed)?;
    args.add(e.error_type)?;
    args.add(e.error_message)?;
    args.add(e.metadata)?;
    args.add(e.service_tier)?;
    args.add(
        e.cost_source
            .map(|c| position(&COST_SOURCES, CostSource::as_str, c))
            .transpose()?,
    )?;
    args.add(e.cost_details)?;
    args.add(e.usage_details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordKind;
    use crate::sink::{ActivitySink, SqliteSink};

    async fn rows(sink: &SqliteSink) -> (i64, i64) {
        let log: i64 = sqlx::query_scalar("SELECT count(*) FROM activity_log")
            .fetch_one(sink.store.pool())
            .await
            .unwrap();
        let daily: i64 = sqlx::query_scalar("SELECT count(*) FROM activity_daily")
            .fetch_one(sink.store.pool())
            .await
            .unwrap();
        (log, daily)
    }

    /// Records are encoded a statement at a time: a record that cannot be encoded, found after
    /// the first statements have run, fails the batch whole — nothing of it stays stored.
    #[tokio::test]
    async fn a_record_that_cannot_be_encoded_late_in_a_batch_leaves_nothing() {
        let sink = SqliteSink::in_memory().await.unwrap();
        let mut batch: Vec<ActivityRecord> = (0..150)
            .map(|i| {
                let mut r = ActivityRecord::new(RecordKind::Request);
                r.user_id = Some(format!("user{}", i % 3));
                r.output_tokens = Some(i);
                r
            })
            .collect();
        batch[140].output_tokens = Some(u64::MAX);
        let err = sink.write(&batch).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert!(err.to_string().contains("output_tokens"), "{err}");
        assert_eq!(
            rows(&sink).await,
            (0, 0),
            "the statements before it rolled back"
        );
        batch[140].output_tokens = Some(140);
        sink.write(&batch).await.unwrap();
        assert_eq!(rows(&sink).await, (150, 3));
    }

    #[test]
    fn statements_are_the_largest_powers_of_two_that_fit() {
        let records: Vec<ActivityRecord> = (0..200)
            .map(|_| ActivityRecord::new(RecordKind::Request))
            .collect();
        let sizes = |n: usize| {
            statements(&records[..n])
                .map(|(k, rows)| {
                    assert_eq!(rows.len(), 1 << k);
                    rows.len()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(200), [64, 64, 64, 8]);
        assert_eq!(sizes(77), [64, 8, 4, 1]);
    }
}
