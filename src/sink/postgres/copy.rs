//! The bulk path for large batches: the records are streamed with `COPY … FROM STDIN (FORMAT
//! binary)` into a temporary staging table, then one `INSERT … SELECT … ON CONFLICT DO
//! NOTHING` moves them into the log and adds exactly the rows it inserted to the rollup
//! ([`insert_from`](super::write::insert_from)) — the same statement as the `UNNEST` path, from another source. PostgreSQL
//! reads binary `COPY` rows without parsing text or unpacking arrays, which is where the
//! `UNNEST` statement spent its time.
//!
//! The binary rows are built with sqlx's own `Encode` of each value (the bytes it would send
//! as a bind parameter), so only the frame is written here: a header, a field count per row,
//! a length before each value (-1 for null), a trailer (PostgreSQL's `COPY` docs, "Binary
//! Format"). sqlx has the `COPY` protocol but no binary row writer.

use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, Postgres};
use sqlx::{Encode, PgPool};

use super::write::COLUMN_TYPES;
use super::{SET_TIMEOUTS, write_error};
use crate::record::ActivityRecord;
use crate::sink::SinkError;
use crate::sink::sql::{COLUMNS, EncodedRecord, columns};

/// The staging table: temporary (one per connection, never logged), emptied at every commit.
/// Its name does not depend on the sink's table names: its shape is the same for all of them,
/// and a connection uses it for one batch at a time.
pub(super) const STAGING: &str = "pg_temp.tower_activity_staging";

/// What opens a bulk transaction: the sink's timeouts, no `NOTICE` for a staging table that
/// exists already (sqlx logs notices at `INFO`), and the staging table if this connection
/// has none yet.
pub(super) fn begin_statement() -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .zip(COLUMN_TYPES)
        .map(|(c, t)| format!("{c} {t}"))
        .collect();
    format!(
        "BEGIN; {SET_TIMEOUTS}; SET LOCAL client_min_messages = warning; \
         CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS",
        STAGING.trim_start_matches("pg_temp."),
        cols.join(", ")
    )
}

/// The `COPY` statement into the staging table.
pub(super) fn copy_statement() -> String {
    format!(
        "COPY {STAGING} ({}) FROM STDIN (FORMAT binary)",
        columns(None)
    )
}

/// The binary `COPY` data of a batch.
struct CopyData {
    buf: PgArgumentBuffer,
}

/// The signature, flags (none) and header extension length (0) of binary `COPY` data.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl CopyData {
    fn new(rows: usize) -> Self {
        let mut buf = PgArgumentBuffer::default();
        // About 400 bytes a row for a typical record.
        buf.reserve(HEADER.len() + rows * 400 + 2);
        buf.extend_from_slice(HEADER);
        CopyData { buf }
    }

    /// One value: its length, then sqlx's binary encoding of it; -1 for null.
    fn value<'q, T: Encode<'q, Postgres>>(&mut self, value: &T) -> Result<(), SinkError> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let encoded = value
            .encode_by_ref(&mut self.buf)
            .map_err(SinkError::permanent)?;
        let len = match encoded {
            IsNull::Yes => {
                self.buf.truncate(at + 4);
                -1
            }
            IsNull::No => i32::try_from(self.buf.len() - at - 4).map_err(|_| {
                SinkError::permanent("a value longer than 2 GiB does not fit a COPY field")
            })?,
        };
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// One row, its values in [`COLUMNS`] order and [`COLUMN_TYPES`] types.
    fn row(&mut self, e: &EncodedRecord<'_>) -> Result<(), SinkError> {
        self.buf
            .extend_from_slice(&(COLUMNS.len() as i16).to_be_bytes());
        self.value(&e.id)?;
        self.value(&e.kind)?;
        self.value(&e.timestamp)?;
        self.value(&e.user_id.as_deref())?;
        self.value(&e.session_id.as_deref())?;
        self.value(&&*e.app)?;
        self.value(&&*e.endpoint)?;
        self.value(&e.api)?;
        self.value(&e.model.as_deref())?;
        self.value(&e.provider.as_deref())?;
        self.value(&e.upstream.as_deref())?;
        self.value(&e.stream)?;
        self.value(&e.status_code)?;
        self.value(&e.outcome)?;
        self.value(&e.finish_reason)?;
        self.value(&e.native_finish_reason.as_deref())?;
        for tokens in &e.tokens {
            self.value(tokens)?;
        }
        self.value(&e.usage_source)?;
        self.value(&e.cost_usd.as_deref())?;
        self.value(&e.ttft_ms)?;
        self.value(&e.latency_ms)?;
        self.value(&e.speed)?;
        self.value(&e.error_type.as_deref())?;
        self.value(&e.error_message.as_deref())?;
        self.value(&e.metadata.as_str())?;
        self.value(&e.service_tier.as_deref())?;
        self.value(&e.cost_source)?;
        self.value(&e.cost_details.as_deref())?;
        self.value(&e.usage_details.as_deref())
    }

    /// The data, with the trailer.
    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        std::mem::take(&mut *self.buf)
    }
}

/// The binary `COPY` data of `records`.
fn encode(records: &[ActivityRecord]) -> Result<Vec<u8>, SinkError> {
    let mut data = CopyData::new(records.len());
    for record in records {
        data.row(&EncodedRecord::new(record)?)?;
    }
    Ok(data.finish())
}

/// Writes `records` through the staging table, in one transaction: `begin` opens it (see
/// [`begin_statement`]), `copy` fills the staging table, `insert` moves the rows on.
pub(super) async fn write(
    pool: &PgPool,
    statements: &BulkStatements,
    records: &[ActivityRecord],
) -> Result<(), SinkError> {
    let data = encode(records)?;
    let mut tx = pool
        .begin_with(statements.begin.clone())
        .await
        .map_err(write_error)?;
    let mut copy = tx
        .copy_in_raw(&statements.copy)
        .await
        .map_err(write_error)?;
    copy.send(data).await.map_err(write_error)?;
    copy.finish().await.map_err(write_error)?;
    sqlx::query(&statements.insert)
        .execute(&mut *tx)
        .await
        .map_err(write_error)?;
    tx.commit().await.map_err(write_error)
}

/// The bulk path's statements for one set of table names, built once.
#[derive(Debug)]
pub(super) struct BulkStatements {
    begin: String,
    copy: String,
    insert: String,
}

impl BulkStatements {
    pub(super) fn new(log: &str, daily: &str) -> Self {
        BulkStatements {
            begin: begin_statement(),
            copy: copy_statement(),
            insert: super::write::insert_from(log, daily, STAGING),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordKind;

    #[test]
    fn binary_rows_have_a_header_a_count_and_length_prefixed_values() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.model = Some("m".into());
        let data = encode(std::slice::from_ref(&r)).unwrap();
        assert!(data.starts_with(b"PGCOPY\n\xff\r\n\0"));
        assert!(data.ends_with(&[0xff, 0xff]), "the trailer");
        let row = &data[HEADER.len()..];
        assert_eq!(&row[..2], &34i16.to_be_bytes(), "34 fields");
        assert_eq!(&row[2..6], &16i32.to_be_bytes(), "a uuid is 16 bytes");
        assert_eq!(&row[6..22], r.id.as_bytes());
        assert_eq!(&row[22..26], &7i32.to_be_bytes(), "\"request\"");
        assert_eq!(&row[26..33], b"request");
        assert_eq!(&row[33..37], &8i32.to_be_bytes(), "timestamptz: 8 bytes");
        assert_eq!(&row[45..49], &(-1i32).to_be_bytes(), "no user: null");
    }

    #[test]
    fn the_staging_table_has_every_column() {
        let begin = begin_statement();
        assert!(begin.contains("CREATE TEMP TABLE IF NOT EXISTS tower_activity_staging (id uuid,"));
        assert!(
            begin.contains("usage_details text) ON COMMIT DELETE ROWS"),
            "{begin}"
        );
        assert!(copy_statement().ends_with("usage_details) FROM STDIN (FORMAT binary)"));
    }
}
