//! The bulk path for large batches: the records are streamed with `COPY … FROM STDIN (FORMAT
//! binary)` straight into the log (PostgreSQL routes each row to its time partition and
//! inserts them a page at a time), and the batch's rollup rows, added up here while the rows
//! are encoded ([`Rollup`]), are upserted in one small statement — one transaction.
//!
//! `COPY` has no `ON CONFLICT`: a record already stored (a retry after a lost commit
//! acknowledgement, a replayed spool, a redelivery) makes it fail with a unique violation on
//! the `(id, timestamp)` key, the transaction is rolled back, and the sink writes the batch
//! again through the `UNNEST` statement, which skips stored ids and counts only the rows it
//! inserted ([`Bulk::Duplicates`]). Duplicates are rare; when they are not (a backlog being
//! replayed), the sink sends the next batches through `UNNEST` directly for a while.
//!
//! The rows are encoded in chunks and each chunk is sent as soon as it is ready, so
//! PostgreSQL inserts one chunk while the next is encoded. Values are written in the log's
//! own types: sqlx's `Encode` for most (the bytes it would send as a bind parameter),
//! [`numeric::encode`] for the cost, `JSONB`'s version byte before the JSON text. Only the
//! frame is written here: a header, a field count per row, a length before each value (-1
//! for null), a trailer (PostgreSQL's `COPY` docs, "Binary Format"). sqlx has the `COPY`
//! protocol but no binary row writer.

use rust_decimal::Decimal;
use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, Postgres};
use sqlx::{Encode, PgPool};

use super::rollup::{self, Rollup};
use super::{SET_TIMEOUTS, numeric, write_error};
use crate::record::ActivityRecord;
use crate::sink::SinkError;
use crate::sink::sql::{COLUMNS, EncodedRecord, columns};

/// How many rows are encoded before they are sent: about 400 KB.
const CHUNK: usize = 1_000;

/// SQLSTATE 23505, unique violation: a record of the batch is stored already.
const UNIQUE_VIOLATION: &str = "23505";

/// `JSONB`'s binary format: a version byte (1), then the JSON text.
const JSONB_VERSION: u8 = 1;

/// The binary `COPY` data of a batch, sent a chunk at a time.
struct CopyData {
    buf: PgArgumentBuffer,
}

/// The signature, flags (none) and header extension length (0) of binary `COPY` data.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// About 400 bytes a row for a typical record.
const ROW_BYTES: usize = 400;

impl CopyData {
    /// The data, starting with the header.
    fn new() -> Self {
        let mut data = CopyData {
            buf: PgArgumentBuffer::default(),
        };
        data.buf.reserve(HEADER.len() + CHUNK * ROW_BYTES);
        data.buf.extend_from_slice(HEADER);
        data
    }

    /// Reserves the length of a value and returns where it is.
    fn start_value(&mut self) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    /// Writes the length of the value started at `at`.
    fn end_value(&mut self, at: usize) -> Result<(), SinkError> {
        let len = i32::try_from(self.buf.len() - at - 4).map_err(|_| {
            SinkError::permanent("a value longer than 2 GiB does not fit a COPY field")
        })?;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// One value: its length, then sqlx's binary encoding of it; -1 for null.
    fn value<'q, T: Encode<'q, Postgres>>(&mut self, value: &T) -> Result<(), SinkError> {
        let at = self.start_value();
        let encoded = value
            .encode_by_ref(&mut self.buf)
            .map_err(SinkError::permanent)?;
        match encoded {
            IsNull::Yes => {
                self.buf.truncate(at);
                self.null();
                Ok(())
            }
            IsNull::No => self.end_value(at),
        }
    }

    /// A `NUMERIC` value.
    fn numeric(&mut self, value: Option<&Decimal>) -> Result<(), SinkError> {
        let Some(value) = value else {
            self.null();
            return Ok(());
        };
        let at = self.start_value();
        numeric::encode(value, &mut self.buf);
        self.end_value(at)
    }

    /// A `JSONB` value from its JSON text.
    fn jsonb(&mut self, json: Option<&str>) -> Result<(), SinkError> {
        let Some(json) = json else {
            self.null();
            return Ok(());
        };
        let at = self.start_value();
        self.buf.push(JSONB_VERSION);
        self.buf.extend_from_slice(json.as_bytes());
        self.end_value(at)
    }

    /// One row of `record` (`e` its encoding), its values in [`COLUMNS`] order and the log's
    /// types.
    fn row(&mut self, record: &ActivityRecord, e: &EncodedRecord<'_>) -> Result<(), SinkError> {
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
        self.numeric(record.cost_usd.as_ref())?;
        self.value(&e.ttft_ms)?;
        self.value(&e.latency_ms)?;
        self.value(&e.speed)?;
        self.value(&e.error_type.as_deref())?;
        self.value(&e.error_message.as_deref())?;
        self.jsonb(Some(&e.metadata))?;
        self.value(&e.service_tier.as_deref())?;
        self.value(&e.cost_source)?;
        self.jsonb(e.cost_details.as_deref())?;
        self.jsonb(e.usage_details.as_deref())
    }

    /// The rows written so far, to send; the data continues empty.
    fn take(&mut self) -> Vec<u8> {
        let next = Vec::with_capacity(CHUNK * ROW_BYTES);
        std::mem::replace(&mut *self.buf, next)
    }

    /// The trailer.
    fn finish(&mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        std::mem::take(&mut *self.buf)
    }
}

/// What became of a bulk write.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Bulk {
    /// Every record was inserted and counted in the rollup; committed.
    Written,
    /// A record of the batch is stored already (or is in it twice): nothing was written.
    Duplicates,
    /// A rollup sum is not exact here ([`Rollup::is_exact`]): nothing was written.
    Inexact,
}

/// `records` in about the order of the log's user index, `(user_id, timestamp DESC, id
/// DESC)` (users by bytes, which is the order of a `C` collation):
/// each user's rows of the batch then go into that index's leaf pages one after another
/// (and onto neighbouring heap pages), instead of one row each across hundreds of users'
/// pages in turn. Measured: 15–20 % less of PostgreSQL's CPU for the `COPY` of a batch of
/// 5,000 rows of 500 users (BENCHMARKS.md, "Storage").
fn in_index_order(records: &[ActivityRecord]) -> Vec<&ActivityRecord> {
    let mut sorted: Vec<&ActivityRecord> = records.iter().collect();
    sorted.sort_unstable_by(|a, b| {
        a.user_id
            .cmp(&b.user_id)
            .then(b.timestamp.cmp(&a.timestamp))
            .then(b.id.cmp(&a.id))
    });
    sorted
}

/// Writes `records` with `COPY` into the log and the rollup's upsert, in one transaction.
pub(super) async fn write(
    pool: &PgPool,
    statements: &BulkStatements,
    records: &[ActivityRecord],
) -> Result<Bulk, SinkError> {
    let mut tx = pool
        .begin_with(statements.begin.clone())
        .await
        .map_err(write_error)?;
    let mut copy = tx
        .copy_in_raw(&statements.copy)
        .await
        .map_err(write_error)?;
    let mut data = CopyData::new();
    let mut rollup = Rollup::new();
    for chunk in in_index_order(records).chunks(CHUNK) {
        let encoded = chunk
            .iter()
            .try_for_each(|&record| -> Result<(), SinkError> {
                let e = EncodedRecord::new(record)?;
                data.row(record, &e)?;
                rollup.add(&e, record.cost_usd);
                Ok(())
            });
        if let Err(e) = encoded {
            // The server's answer to the abort is the error it was asked to raise.
            let _ = copy
                .abort("tower-activity: a record could not be encoded")
                .await;
            return Err(e);
        }
        copy.send(data.take()).await.map_err(write_error)?;
    }
    copy.send(data.finish()).await.map_err(write_error)?;
    let undone = if !rollup.is_exact() {
        let _ = copy
            .abort("tower-activity: the rollup is summed in SQL")
            .await;
        Bulk::Inexact
    } else {
        match copy.finish().await {
            Ok(_) => Bulk::Written,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                Bulk::Duplicates
            }
            Err(e) => return Err(write_error(e)),
        }
    };
    if undone != Bulk::Written {
        tx.rollback().await.map_err(write_error)?;
        return Ok(undone);
    }
    rollup
        .upsert(&mut tx, &statements.rollup)
        .await
        .map_err(write_error)?;
    tx.commit().await.map_err(write_error)?;
    Ok(Bulk::Written)
}

/// The bulk path's statements for one set of table names, built once.
#[derive(Debug)]
pub(super) struct BulkStatements {
    begin: String,
    copy: String,
    rollup: String,
}

impl BulkStatements {
    pub(super) fn new(log: &str, daily: &str) -> Self {
        BulkStatements {
            begin: format!("BEGIN; {SET_TIMEOUTS}"),
            copy: format!("COPY {log} ({}) FROM STDIN (FORMAT binary)", columns(None)),
            rollup: rollup::statement(daily),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordKind;

    /// The binary `COPY` data of `records`, in one piece.
    fn encode(records: &[ActivityRecord]) -> Vec<u8> {
        let mut data = CopyData::new();
        for r in records {
            data.row(r, &EncodedRecord::new(r).unwrap()).unwrap();
        }
        let mut bytes = data.take();
        bytes.extend(data.finish());
        bytes
    }

    #[test]
    fn binary_rows_have_a_header_a_count_and_length_prefixed_values() {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.model = Some("m".into());
        r.cost_usd = Some(Decimal::new(15, 1));
        let data = encode(std::slice::from_ref(&r));
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
        let cost = [0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88]; // 1.5: digits 1, 5000
        let at = row
            .windows(16)
            .position(|w| w == [&[0, 0, 0, 12][..], &cost].concat());
        assert!(at.is_some(), "the cost as a 12-byte NUMERIC");
        let metadata = [&[0, 0, 0, 3, JSONB_VERSION][..], b"{}"].concat();
        assert!(
            row.windows(7).any(|w| w == metadata),
            "the metadata as JSONB"
        );
    }

    #[test]
    fn rows_are_sent_by_user_newest_first() {
        let t = chrono::Utc::now();
        let rows: Vec<ActivityRecord> = [("b", 0), ("a", 0), ("b", 2), ("a", 1)]
            .iter()
            .map(|&(user, ms)| {
                let mut r = ActivityRecord::new(RecordKind::Request);
                r.user_id = Some(user.into());
                r.timestamp = t + chrono::TimeDelta::milliseconds(ms);
                r
            })
            .collect();
        let order: Vec<_> = in_index_order(&rows)
            .iter()
            .map(|r| (r.user_id.as_deref().unwrap(), r.timestamp))
            .collect();
        let at = |ms| t + chrono::TimeDelta::milliseconds(ms);
        assert_eq!(
            order,
            [("a", at(1)), ("a", at(0)), ("b", at(2)), ("b", at(0))]
        );
    }

    #[test]
    fn chunks_join_into_one_stream() {
        let records: Vec<_> = (0..3)
            .map(|_| ActivityRecord::new(RecordKind::Event))
            .collect();
        let whole = encode(&records);
        let mut data = CopyData::new();
        let mut chunked = Vec::new();
        for r in &records {
            data.row(r, &EncodedRecord::new(r).unwrap()).unwrap();
            chunked.extend(data.take());
        }
        chunked.extend(data.finish());
        assert_eq!(chunked, whole);
    }

    #[test]
    fn the_copy_names_every_column_of_the_log() {
        let s = BulkStatements::new("l", "d");
        assert!(s.copy.starts_with("COPY l (id, kind, timestamp,"));
        assert!(
            s.copy
                .ends_with("usage_details) FROM STDIN (FORMAT binary)")
        );
        assert!(s.rollup.starts_with("INSERT INTO d AS d"));
    }
}
