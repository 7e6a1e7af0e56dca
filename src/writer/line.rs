//! The spool's JSON line for a record: byte for byte what `serde_json::to_writer` writes for
//! [`ActivityRecord`], without its per-byte work on the parts that need none.
//!
//! serde_json escapes every map key and every string value a byte at a time (≈ 11
//! instructions a byte, ≈ 850 bytes a record: 9.9k of the 15.5k instructions a record's line
//! cost, the largest item of the spool, BENCHMARKS.md). Here the keys are constants, the
//! enums their fixed names, the id and the timestamp ASCII written from stack buffers, and a
//! string value is copied as it is once one pass finds nothing to escape (a string that has
//! something goes through serde_json). The nested values — cost, cost parts, counts, error,
//! metadata, floats — are still written by serde_json. The unit tests compare the bytes with
//! serde_json's for arbitrary records, so a field added to the record without being added
//! here fails them.

use std::io;

use serde::Serialize;

use crate::record::ActivityRecord;

/// Appends `record`'s JSON (no newline) to `out`.
pub(super) fn write(record: &ActivityRecord, out: &mut Vec<u8>) -> io::Result<()> {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(record.id.hyphenated().encode_lower(&mut id).as_bytes());
    out.extend_from_slice(b"\",\"kind\":\"");
    out.extend_from_slice(match record.kind {
        crate::RecordKind::Request => b"request",
        crate::RecordKind::Event => b"event",
    });
    out.extend_from_slice(b"\",\"timestamp\":");
    match crate::rfc3339::to_buf(&record.timestamp) {
        Some((buf, n)) => {
            out.push(b'"');
            out.extend_from_slice(&buf[..n]);
            out.push(b'"');
        }
        None => value(out, &record.timestamp)?,
    }
    out.extend_from_slice(b",\"user_id\":");
    opt_str(out, record.user_id.as_deref())?;
    out.extend_from_slice(b",\"session_id\":");
    opt_str(out, record.session_id.as_deref())?;
    out.extend_from_slice(b",\"app\":");
    string(out, &record.app)?;
    out.extend_from_slice(b",\"endpoint\":");
    string(out, &record.endpoint)?;
    out.extend_from_slice(b",\"api\":");
    name(out, record.api.as_str());
    out.extend_from_slice(b",\"model\":");
    opt_str(out, record.model.as_deref())?;
    out.extend_from_slice(b",\"provider\":");
    opt_str(out, record.provider.as_deref())?;
    out.extend_from_slice(b",\"upstream\":");
    opt_str(out, record.upstream.as_deref())?;
    out.extend_from_slice(if record.stream {
        b",\"stream\":true,\"status_code\":"
    } else {
        b",\"stream\":false,\"status_code\":"
    });
    value(out, &record.status_code)?;
    out.extend_from_slice(b",\"outcome\":");
    name(out, record.outcome.as_str());
    out.extend_from_slice(b",\"finish_reason\":");
    match record.finish_reason {
        Some(f) => name(out, f.as_str()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"native_finish_reason\":");
    opt_str(out, record.native_finish_reason.as_deref())?;
    for (key, count) in [
        (&b",\"input_tokens\":"[..], record.input_tokens),
        (b",\"output_tokens\":", record.output_tokens),
        (b",\"total_tokens\":", record.total_tokens),
        (b",\"cache_read_tokens\":", record.cache_read_tokens),
        (b",\"cache_write_tokens\":", record.cache_write_tokens),
        (b",\"reasoning_tokens\":", record.reasoning_tokens),
    ] {
        out.extend_from_slice(key);
        value(out, &count)?;
    }
    out.extend_from_slice(b",\"usage_source\":");
    name(out, record.usage_source.as_str());
    out.extend_from_slice(b",\"cost_usd\":");
    value(out, &record.cost_usd)?;
    out.extend_from_slice(b",\"cost_source\":");
    match record.cost_source {
        Some(c) => name(out, c.as_str()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"cost_details\":");
    value(out, &record.cost_details)?;
    out.extend_from_slice(b",\"service_tier\":");
    opt_str(out, record.service_tier.as_deref())?;
    out.extend_from_slice(b",\"usage_details\":");
    value(out, &record.usage_details)?;
    out.extend_from_slice(b",\"ttft_ms\":");
    value(out, &record.ttft_ms)?;
    out.extend_from_slice(b",\"latency_ms\":");
    value(out, &record.latency_ms)?;
    out.extend_from_slice(b",\"speed\":");
    value(out, &record.speed)?;
    out.extend_from_slice(b",\"error\":");
    value(out, &record.error)?;
    out.extend_from_slice(b",\"metadata\":");
    value(out, &record.metadata)?;
    out.push(b'}');
    Ok(())
}

/// Anything else, as serde_json writes it.
fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> io::Result<()> {
    serde_json::to_writer(out, v).map_err(io::Error::other)
}

/// A fixed name (an enum's): ASCII with nothing to escape.
fn name(out: &mut Vec<u8>, s: &'static str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// A string: copied as it is when nothing in it needs escaping, else through serde_json.
fn string(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // No early exit, so that the compiler can test many bytes a step.
    let escape = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escape {
        return value(out, s);
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => string(out, s),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
