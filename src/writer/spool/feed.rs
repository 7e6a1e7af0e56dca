//! Handing records on to the sink task's queue, in number order, once synced: from memory
//! when they were kept there (as far as
//! [`SpoolConfig::memory_bytes`](crate::writer::SpoolConfig::memory_bytes) allows), else read
//! back from their file and parsed.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use tokio::sync::mpsc;

use super::Spooler;
use super::files::{parse, segment_end};
use crate::record::ActivityRecord;
use crate::writer::Msg;

/// A record appended by this process, kept until it is handed on.
pub(super) struct Kept {
    /// Its number (see [`Spooler::appended`]).
    pub(super) number: u64,
    /// Its file, and where its line ends there.
    pub(super) index: u64,
    pub(super) end_offset: u64,
    /// Its [`ActivityRecord::approx_size`].
    pub(super) size: usize,
    pub(super) record: Box<ActivityRecord>,
}

/// Where the next record to hand on is read.
pub(super) struct Reader {
    pub(super) index: u64,
    pub(super) file: BufReader<File>,
    pub(super) offset: u64,
}

impl Spooler {
    /// The next synced record to hand on: from memory when it was kept, else read from its
    /// file.
    /// With it, its [`ActivityRecord::approx_size`] (kept with a record kept in memory).
    pub(super) fn read_next(&mut self) -> Option<(Box<ActivityRecord>, usize)> {
        while self.fed < self.synced_end() {
            // Kept records the file reader went past (only when a line of ours did not
            // parse back, which a working disk never does) are not handed on twice.
            while self.kept.front().is_some_and(|k| k.number < self.fed) {
                let k = self.kept.pop_front().expect("checked");
                self.kept_bytes -= k.size;
            }
            if self.kept.front().is_some_and(|k| k.number == self.fed) {
                let k = self.kept.pop_front().expect("checked");
                self.kept_bytes -= k.size;
                self.fed += 1;
                self.resume = Some((k.index, k.end_offset));
                return Some((k.record, k.size));
            }
            let segment = self.segments.iter().find(|s| s.end > self.fed)?;
            let (index, path, synced_bytes) =
                (segment.index, segment.path.clone(), segment.synced_bytes);
            // After records handed on from memory, continue where the last one's line ended.
            let resume = self.resume.filter(|&(i, _)| i == index).map(|(_, o)| o);
            if self.reader.as_ref().is_none_or(|r| r.index != index) {
                let file = File::open(&path).ok()?;
                self.reader = Some(Reader {
                    index,
                    file: BufReader::new(file),
                    offset: 0,
                });
            }
            let reader = self.reader.as_mut()?;
            if let Some(offset) = resume.filter(|&o| o != reader.offset) {
                if let Err(error) = reader.file.seek(SeekFrom::Start(offset)) {
                    tracing::error!(sink = %self.shared.name, %error, "activity spool: seek failed");
                    return None;
                }
                reader.offset = offset;
            }
            self.resume = None;
            if reader.offset >= synced_bytes {
                // Only lines that did not parse were left: nothing more in this file.
                self.fed = segment_end(&self.segments, index);
                continue;
            }
            self.line.clear();
            let n = match reader.file.read_until(b'\n', &mut self.line) {
                Ok(n) => n,
                Err(error) => {
                    tracing::error!(sink = %self.shared.name, %error, "activity spool: read failed");
                    let _ = reader.file.seek(SeekFrom::Start(reader.offset));
                    return None;
                }
            };
            if n == 0 {
                self.fed = segment_end(&self.segments, index);
                continue;
            }
            reader.offset += n as u64;
            match parse(&self.line) {
                Some(record) => {
                    self.fed += 1;
                    let size = record.approx_size();
                    return Some((Box::new(record), size));
                }
                None => tracing::warn!(
                    sink = %self.shared.name,
                    file = %path.display(),
                    "activity spool: skipped a line that is not a record"
                ),
            }
        }
        None
    }

    /// Hands on synced records and due flush markers while the sink task's queue has room.
    pub(super) fn feed(&mut self, tx: &mpsc::Sender<Msg>) {
        loop {
            if self.flushes.front().is_some_and(|(at, _)| *at <= self.fed) {
                let Ok(permit) = tx.try_reserve() else { break };
                let (_, flush) = self.flushes.pop_front().expect("checked");
                permit.send(Msg::Flush(flush));
                self.shared.wake.notify_one();
                continue;
            }
            if self.fed >= self.synced_end() {
                break;
            }
            let Ok(permit) = tx.try_reserve() else { break };
            let Some((record, size)) = self.read_next() else {
                break;
            };
            self.shared.queued_bytes.fetch_add(size, Relaxed);
            permit.send(Msg::Record(record, size));
            let queued = tx.max_capacity() - tx.capacity();
            if queued >= self.shared.wake_at.load(SeqCst) {
                self.shared.wake.notify_one();
            }
        }
    }

    /// Whether there is something to hand on that waits for room in the sink task's queue.
    pub(super) fn has_feed(&self) -> bool {
        self.fed < self.synced_end() || self.flushes.front().is_some_and(|(at, _)| *at <= self.fed)
    }
}
