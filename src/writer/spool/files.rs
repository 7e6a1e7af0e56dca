//! The spool's files: one per segment of records, numbered in order; found and counted at
//! start, created when the current one is full, deleted once every record in it is answered
//! for.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::{Spooler, spool_error};
use crate::record::ActivityRecord;
use crate::writer::WriterError;

/// One spool file: the records numbered up to `end` (in handing-on order) since the file
/// before it.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) index: u64,
    pub(super) path: PathBuf,
    pub(super) end: u64,
    /// Bytes written (or found) so far.
    pub(super) bytes: u64,
    /// Bytes and records known to be on disk (synced, or found at start).
    pub(super) synced_bytes: u64,
    pub(super) synced_end: u64,
}

pub(super) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.jsonl"))
}

/// The complete lines of a file that parse as records, and its length.
pub(super) fn count_records(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = BufReader::new(File::open(path)?);
    let (mut records, mut bytes, mut line) = (0, 0, Vec::new());
    loop {
        line.clear();
        let n = file.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if parse(&line).is_some() {
            records += 1;
        }
    }
    Ok((records, bytes))
}

/// A record from a complete line (`None` for a torn or unreadable one).
pub(super) fn parse(line: &[u8]) -> Option<ActivityRecord> {
    let body = line.strip_suffix(b"\n")?;
    serde_json::from_slice(body).ok()
}

impl Spooler {
    /// A new, empty file numbered `index`, whose first record is `first`.
    pub(super) fn create(
        dir: &Path,
        index: u64,
        first: u64,
    ) -> Result<(BufWriter<File>, Arc<File>, Segment), WriterError> {
        let path = segment_path(dir, index);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| spool_error(&path, e))?;
        let handle = file.try_clone().map_err(|e| spool_error(&path, e))?;
        let segment = Segment {
            index,
            path,
            end: first,
            bytes: 0,
            synced_bytes: 0,
            synced_end: first,
        };
        Ok((
            BufWriter::with_capacity(64 << 10, file),
            Arc::new(handle),
            segment,
        ))
    }

    pub(super) fn current(&mut self) -> &mut Segment {
        self.segments
            .back_mut()
            .expect("the current file is always there")
    }

    pub(super) fn bytes(&self) -> u64 {
        self.shared.counters.spool_bytes.load(Relaxed)
    }

    /// Deletes every file (but the current one) whose records are all answered for; the
    /// current one too when `all` and everything is answered for.
    pub(super) fn truncate(&mut self, all: bool) {
        let resolved = self.shared.resolved.load(Relaxed);
        while self.segments.len() > 1 && self.segments[0].end <= resolved.min(self.fed) {
            let segment = self.segments.pop_front().expect("checked");
            self.remove(&segment);
        }
        if all
            && self.segments.len() == 1
            && self.appended == resolved
            && !self.unsynced
            && self.syncing.is_none()
        {
            let segment = self.segments.pop_front().expect("checked");
            self.remove(&segment);
        }
    }

    pub(super) fn remove(&mut self, segment: &Segment) {
        if self
            .reader
            .as_ref()
            .is_some_and(|r| r.index == segment.index)
        {
            self.reader = None;
        }
        match fs::remove_file(&segment.path) {
            Ok(()) => {
                self.shared
                    .counters
                    .spool_bytes
                    .fetch_sub(segment.bytes, Relaxed);
            }
            Err(error) => tracing::warn!(
                sink = %self.shared.name,
                %error,
                file = %segment.path.display(),
                "activity spool: cannot delete a written file"
            ),
        }
    }
}

/// The number after the last record of file `index`.
pub(super) fn segment_end(segments: &VecDeque<Segment>, index: u64) -> u64 {
    segments
        .iter()
        .find(|s| s.index == index)
        .map_or(0, |s| s.synced_end)
}
