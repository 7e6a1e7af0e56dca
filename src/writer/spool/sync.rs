//! Syncing the current file: `fdatasync` on a blocking thread every `sync_interval` (or at
//! once for a flush marker), so that records keep being taken off the queue while the disk
//! works; a record is handed on once the sync that covers it has ended.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use super::Spooler;

/// What a sync makes durable: file `index` up to `bytes`, records up to `end`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SyncPoint {
    pub(super) index: u64,
    pub(super) bytes: u64,
    pub(super) end: u64,
}

impl Spooler {
    /// The records appended and synced so far: everything before this may be handed on.
    /// Files are synced in order, so it is the first file not synced to its end's.
    pub(super) fn synced_end(&self) -> u64 {
        self.segments
            .iter()
            .find(|s| s.synced_end < s.end)
            .or(self.segments.back())
            .map_or(0, |s| s.synced_end)
    }

    /// Whether a sync should start now: records wait for one, none is running, and the
    /// interval has passed (or a flush marker waits).
    pub(super) fn sync_due(&self) -> bool {
        self.unsynced
            && self.syncing.is_none()
            && (self.urgent || Instant::now() >= self.last_sync + self.config.sync_interval)
    }

    /// Flushes the current file to the kernel and starts its `fdatasync` on a blocking
    /// thread, so that records keep being taken off the queue while the disk works; starts
    /// the next file when this one is full.
    pub(super) fn start_sync(&mut self) {
        self.last_sync = Instant::now();
        self.urgent = false;
        if let Err(error) = self.writer.flush() {
            tracing::error!(sink = %self.shared.name, %error, "activity spool: flush failed");
            return;
        }
        self.unsynced = false;
        let segment = self.current();
        let point = SyncPoint {
            index: segment.index,
            bytes: segment.bytes,
            end: segment.end,
        };
        let full = segment.bytes >= self.config.segment_bytes;
        let handle = Arc::clone(&self.sync_handle);
        self.syncing = Some((
            tokio::task::spawn_blocking(move || handle.sync_data()),
            point,
        ));
        if full {
            match Self::create(&self.config.dir, point.index + 1, point.end) {
                Ok((writer, handle, segment)) => {
                    self.writer = writer;
                    self.sync_handle = handle;
                    self.segments.push_back(segment);
                }
                Err(error) => {
                    tracing::error!(sink = %self.shared.name, %error, "activity spool: new file");
                }
            }
        }
    }

    /// The running sync ended: its records may be handed on.
    pub(super) fn synced(&mut self, result: Result<io::Result<()>, tokio::task::JoinError>) {
        let Some((_, point)) = self.syncing.take() else {
            return;
        };
        if let Ok(Err(error)) | Err(error) = result.map_err(io::Error::other) {
            // The records are in the file (the kernel has them): hand them on; only a
            // machine crash could still lose them.
            tracing::error!(sink = %self.shared.name, %error, "activity spool: sync failed");
        }
        if let Some(segment) = self.segments.iter_mut().find(|s| s.index == point.index) {
            let newly = point.end.saturating_sub(segment.synced_end);
            segment.synced_bytes = segment.synced_bytes.max(point.bytes);
            segment.synced_end = segment.synced_end.max(point.end);
            self.shared.counters.spooled.fetch_add(newly, Relaxed);
        }
    }

    /// Syncs everything appended and waits for it (at the end).
    pub(super) async fn sync_all(&mut self) {
        loop {
            if let Some((handle, _)) = self.syncing.as_mut() {
                let result = handle.await;
                self.synced(result);
            }
            if !self.unsynced {
                return;
            }
            self.start_sync();
            if self.syncing.is_none() {
                return; // the flush failed: nothing more to do
            }
        }
    }
}
