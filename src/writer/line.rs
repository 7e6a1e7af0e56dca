//! The spool's JSON line for a record: byte for byte what `serde_json::to_writer` writes for
//! [`ActivityRecord`], without its per-byte work on the parts that need none.
//!
//! serde_json escapes every map key and every string value a byte at a time (≈ 11
//! instructions a byte, ≈ 850 bytes a record: 9.9k of the 15.5k instructions a record's line
//! cost, the largest item of the spool, BENCHMARKS.md). Here the keys are constants, the
//! enums their fixed names, the id and the timestamp ASCII written from stack buffers, and the
//! strings, the cost, the metadata and the cost and usage details are written by
//! [`json_text`] (strings copied as they are once one pass finds nothing to escape, decimals
//! from itoa's digits), as the SQL stores write their JSON columns. The remaining values —
//! counts, floats, the error — are still written by serde_json. The unit tests compare the
//! bytes with serde_json's for arbitrary records, so a field added to the record without
//! being added here fails them.

use std::io;

use serde::Serialize;

use crate::record::ActivityRecord;
use crate::sink::json_text;

/// Appends `record`'s JSON (no newline) to `out`.
pub(super) fn write(record: &ActivityRecord, out: &mut Vec<u8>) -> io::Result<()> {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(record.id.hyphenated().encode_lower(&mut id).as_bytes());
    out.push(b'"');
    let r = record;
    let mut line = Line(out);
    let kind = match r.kind {
        crate::RecordKind::Request => "request",
        crate::RecordKind::Event => "event",
    };
    line.name(b",\"kind\":", Some(kind));
    match crate::rfc3339::to_buf(&r.timestamp) {
        Some((buf, n)) => line.name(b",\"timestamp\":", std::str::from_utf8(&buf[..n]).ok()),
        None => line.value(b",\"timestamp\":", &r.timestamp)?,
    }
    line.text(b",\"user_id\":", r.user_id.as_deref())?;
    line.text(b",\"session_id\":", r.session_id.as_deref())?;
    line.text(b",\"app\":", Some(&r.app))?;
    line.text(b",\"endpoint\":", Some(&r.endpoint))?;
    line.name(b",\"api\":", Some(r.api.as_str()));
    line.text(b",\"model\":", r.model.as_deref())?;
    line.text(b",\"provider\":", r.provider.as_deref())?;
    line.text(b",\"upstream\":", r.upstream.as_deref())?;
    line.value(b",\"stream\":", &r.stream)?;
    line.value(b",\"status_code\":", &r.status_code)?;
    line.name(b",\"outcome\":", Some(r.outcome.as_str()));
    line.name(b",\"finish_reason\":", r.finish_reason.map(|f| f.as_str()));
    line.text(
        b",\"native_finish_reason\":",
        r.native_finish_reason.as_deref(),
    )?;
    line.value(b",\"input_tokens\":", &r.input_tokens)?;
    line.value(b",\"output_tokens\":", &r.output_tokens)?;
    line.value(b",\"total_tokens\":", &r.total_tokens)?;
    line.value(b",\"cache_read_tokens\":", &r.cache_read_tokens)?;
    line.value(b",\"cache_write_tokens\":", &r.cache_write_tokens)?;
    line.value(b",\"reasoning_tokens\":", &r.reasoning_tokens)?;
    line.name(b",\"usage_source\":", Some(r.usage_source.as_str()));
    line.with(b",\"cost_usd\":", r.cost_usd.as_ref(), |out, cost| {
        json_text::decimal_string(out, cost);
        Ok(())
    })?;
    line.name(b",\"cost_source\":", r.cost_source.map(|c| c.as_str()));
    line.with(
        b",\"cost_details\":",
        r.cost_details.as_ref(),
        json_text::cost_details,
    )?;
    line.text(b",\"service_tier\":", r.service_tier.as_deref())?;
    line.with(
        b",\"usage_details\":",
        r.usage_details.as_ref(),
        json_text::usage_details,
    )?;
    line.value(b",\"ttft_ms\":", &r.ttft_ms)?;
    line.value(b",\"latency_ms\":", &r.latency_ms)?;
    line.value(b",\"speed\":", &r.speed)?;
    line.value(b",\"error\":", &r.error)?;
    line.with(b",\"metadata\":", Some(&r.metadata), json_text::metadata)?;
    line.0.push(b'}');
    Ok(())
}

/// The line being written; each method appends a key (`,"name":`) and its value.
struct Line<'a>(&'a mut Vec<u8>);

impl Line<'_> {
    /// Anything else, as serde_json writes it.
    fn value<T: Serialize + ?Sized>(&mut self, key: &[u8], v: &T) -> io::Result<()> {
        self.0.extend_from_slice(key);
        serde_json::to_writer(&mut *self.0, v).map_err(io::Error::other)
    }

    /// A name known to need no escaping (an enum's, the timestamp's digits), or `null`.
    fn name(&mut self, key: &[u8], s: Option<&str>) {
        self.0.extend_from_slice(key);
        match s {
            Some(s) => json_text::quoted(self.0, s),
            None => self.0.extend_from_slice(b"null"),
        }
    }

    /// A string, or `null` ([`json_text::string`]).
    fn text(&mut self, key: &[u8], s: Option<&str>) -> io::Result<()> {
        self.with(key, s, json_text::string)
    }

    /// A value written by `write`, or `null`.
    fn with<T: ?Sized>(
        &mut self,
        key: &[u8],
        value: Option<&T>,
        write: impl FnOnce(&mut Vec<u8>, &T) -> io::Result<()>,
    ) -> io::Result<()> {
        self.0.extend_from_slice(key);
        match value {
            Some(v) => write(self.0, v),
            None => {
                self.0.extend_from_slice(b"null");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
