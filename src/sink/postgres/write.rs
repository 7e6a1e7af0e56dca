//! A batch into PostgreSQL: one statement for any batch size. The records travel as one array
//! per column, `UNNEST` turns them back into rows, the insert skips ids already stored, and
//! the rollup adds up exactly the rows the insert returned — all in one transaction, which
//! sets the sink's statement and lock timeouts for itself.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::rollup::upsert_daily;
use super::{SET_TIMEOUTS, write_error};
use crate::record::ActivityRecord;
use crate::sink::SinkError;
use crate::sink::sql::{EncodedRecord, columns};

/// The types of the arrays the client sends, in [`COLUMNS`](crate::sink::sql::COLUMNS) order.
/// Money and JSON travel as text and are cast by [`insert_from`].
const COLUMN_TYPES: [&str; 34] = [
    "uuid",
    "text",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "bool",
    "int4",
    "text",
    "text",
    "text",
    "int8",
    "int8",
    "int8",
    "int8",
    "int8",
    "int8",
    "text",
    "text",
    "float8",
    "float8",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
];

/// The one statement that inserts the rows of `source` (a relation with the columns of
/// [`COLUMN_TYPES`]) into `log`, skipping ids already stored, and adds exactly the rows it
/// inserted to the rollup `daily`. The key is `(id, timestamp)` (a partitioned table's keys
/// include its partition key); a record's timestamp never changes, so it conflicts exactly
/// when its id is stored.
fn insert_from(log: &str, daily: &str, source: &str) -> String {
    let cols = columns(None);
    let select = cols
        .replace("cost_usd", "cost_usd::numeric")
        .replace("metadata", "metadata::jsonb")
        .replace("cost_details", "cost_details::jsonb")
        .replace("usage_details", "usage_details::jsonb");
    let rollup = upsert_daily(
        daily,
        "SELECT user_id, (timestamp AT TIME ZONE 'UTC')::date, kind, model, provider, count(*), \
                coalesce(sum(input_tokens), 0)::int8, coalesce(sum(output_tokens), 0)::int8, \
                sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))::int8, \
                coalesce(sum(cost_usd), 0) \
         FROM ins GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
    );
    format!(
        "WITH ins AS (\
           INSERT INTO {log} ({cols}) \
           SELECT {select} FROM {source} \
           ON CONFLICT (id, timestamp) DO NOTHING \
           RETURNING user_id, timestamp, kind, model, provider, input_tokens, output_tokens, \
                     cost_usd\
         ) {rollup}"
    )
}

/// The `UNNEST` statement for the tables `log` and `daily`: one array parameter per column.
pub(super) fn insert_statement(log: &str, daily: &str) -> String {
    let unnest: Vec<String> = COLUMN_TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    let source = format!("UNNEST({}) AS r({})", unnest.join(", "), columns(None));
    insert_from(log, daily, &source)
}

/// One array per column.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<Uuid>,
    kind: Vec<&'a str>,
    timestamp: Vec<DateTime<Utc>>,
    user_id: Vec<Option<&'a str>>,
    session_id: Vec<Option<&'a str>>,
    app: Vec<&'a str>,
    endpoint: Vec<&'a str>,
    api: Vec<&'a str>,
    model: Vec<Option<&'a str>>,
    provider: Vec<Option<&'a str>>,
    upstream: Vec<Option<&'a str>>,
    stream: Vec<bool>,
    status_code: Vec<Option<i32>>,
    outcome: Vec<&'a str>,
    finish_reason: Vec<Option<&'a str>>,
    native_finish_reason: Vec<Option<&'a str>>,
    tokens: [Vec<Option<i64>>; 6],
    usage_source: Vec<&'a str>,
    cost_usd: Vec<Option<&'a str>>,
    ttft_ms: Vec<Option<f64>>,
    latency_ms: Vec<Option<f64>>,
    speed: Vec<Option<f64>>,
    error_type: Vec<Option<&'a str>>,
    error_message: Vec<Option<&'a str>>,
    metadata: Vec<&'a str>,
    service_tier: Vec<Option<&'a str>>,
    cost_source: Vec<Option<&'a str>>,
    cost_details: Vec<Option<&'a str>>,
    usage_details: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, e: &'a EncodedRecord<'a>) {
        self.id.push(e.id);
        self.kind.push(e.kind);
        self.timestamp.push(e.timestamp);
        self.user_id.push(e.user_id.as_deref());
        self.session_id.push(e.session_id.as_deref());
        self.app.push(&e.app);
        self.endpoint.push(&e.endpoint);
        self.api.push(e.api);
        self.model.push(e.model.as_deref());
        self.provider.push(e.provider.as_deref());
        self.upstream.push(e.upstream.as_deref());
        self.stream.push(e.stream);
        self.status_code.push(e.status_code);
        self.outcome.push(e.outcome);
        self.finish_reason.push(e.finish_reason);
        self.native_finish_reason
            .push(e.native_finish_reason.as_deref());
        for (column, value) in self.tokens.iter_mut().zip(e.tokens) {
            column.push(value);
        }
        self.usage_source.push(e.usage_source);
        self.cost_usd.push(e.cost_usd.as_deref());
        self.ttft_ms.push(e.ttft_ms);
        self.latency_ms.push(e.latency_ms);
        self.speed.push(e.speed);
        self.error_type.push(e.error_type.as_deref());
        self.error_message.push(e.error_message.as_deref());
        self.metadata.push(&e.metadata);
        self.service_tier.push(e.service_tier.as_deref());
        self.cost_source.push(e.cost_source);
        self.cost_details.push(e.cost_details.as_deref());
        self.usage_details.push(e.usage_details.as_deref());
    }
}

pub(super) async fn write(
    pool: &PgPool,
    statement: &str,
    records: &[ActivityRecord],
) -> Result<(), SinkError> {
    if records.is_empty() {
        return Ok(());
    }
    let encoded = records
        .iter()
        .map(EncodedRecord::new)
        .collect::<Result<Vec<_>, _>>()?;
    let mut c = Columns::default();
    for e in &encoded {
        c.push(e);
    }
    let [input, output, total, cache_read, cache_write, reasoning] = c.tokens;
    let query = sqlx::query(statement)
        .bind(c.id)
        .bind(c.kind)
        .bind(c.timestamp)
        .bind(c.user_id)
        .bind(c.session_id)
        .bind(c.app)
        .bind(c.endpoint)
        .bind(c.api)
        .bind(c.model)
        .bind(c.provider)
        .bind(c.upstream)
        .bind(c.stream)
        .bind(c.status_code)
        .bind(c.outcome)
        .bind(c.finish_reason)
        .bind(c.native_finish_reason)
        .bind(input)
        .bind(output)
        .bind(total)
        .bind(cache_read)
        .bind(cache_write)
        .bind(reasoning)
        .bind(c.usage_source)
        .bind(c.cost_usd)
        .bind(c.ttft_ms)
        .bind(c.latency_ms)
        .bind(c.speed)
        .bind(c.error_type)
        .bind(c.error_message)
        .bind(c.metadata)
        .bind(c.service_tier)
        .bind(c.cost_source)
        .bind(c.cost_details)
        .bind(c.usage_details);
    let mut tx = pool
        .begin_with(format!("BEGIN; {SET_TIMEOUTS}"))
        .await
        .map_err(write_error)?;
    query.execute(&mut *tx).await.map_err(write_error)?;
    tx.commit().await.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_binds_thirty_four_arrays() {
        let sql = insert_statement("l", "d");
        assert!(sql.contains("$34::text[]") && !sql.contains("$35"));
        assert!(sql.contains("cost_details::jsonb") && sql.contains("usage_details::jsonb"));
        assert!(sql.contains("cost_usd::numeric") && sql.contains("metadata::jsonb"));
    }
}
