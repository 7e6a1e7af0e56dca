//! The crash-safe spool ([`SpoolConfig`]): a task between a lane's queue and its sink task.
//!
//! It takes every message off the queue at once, appends each record as a JSON line to the
//! current file, and every `sync_interval` flushes and syncs the file (`fdatasync`, on a
//! blocking thread). Only then are the records handed on — read back from the files, in
//! order — to the sink task's small queue, as fast as it takes them: when the sink is down,
//! the files grow (to `max_bytes`) instead of the memory queue overflowing. The sink task
//! counts the records it has answered for ([`Shared::resolved`]); records are numbered in
//! file order, so every file whose last record is answered for is deleted. At start, the
//! files a previous process left are read first: their records are handed on before any new
//! one (the sinks are idempotent on `id`, so those the sink had stored are not doubled).
//!
//! The records this process appended are also kept in memory, as long as they fit
//! [`SpoolConfig::memory_bytes`]: once synced they are handed on from there, and the file is read (and
//! parsed) only for what did not fit — a sink slower than the requests, or down — and for
//! what a previous process left. The file is the same either way; what memory saves is a
//! read and a JSON parse per record.
//!
//! A line that does not parse (the torn end of a file after a power loss) is skipped with a
//! warning; it was never counted. Flush markers wait for the records before them to be synced
//! and handed on, then follow them.
//!
//! Here: the spooler's state, its appends and its loop; in `files` the segment files (found,
//! created, deleted), in `sync` their syncing, in `feed` the handing on.

mod feed;
mod files;
mod sync;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use tokio::task::JoinHandle;

use self::feed::{Kept, Reader};
use self::files::{Segment, count_records, segment_path};
use self::sync::SyncPoint;
use super::*;
use crate::writer::{SpoolConfig, WriterError};

/// What woke the spooler. Short-lived, one at a time: boxing the message would cost an
/// allocation per record.
#[allow(clippy::large_enum_variant)]
enum Wake {
    /// A message, or the queue's end.
    Msg(Option<Msg>),
    /// A sync is due (or the queue is half full, or holds a flush marker): take what is
    /// queued.
    Drain,
    /// Appended records are due for a sync.
    Sync,
    /// The running sync ended.
    Synced(Result<io::Result<()>, tokio::task::JoinError>),
    /// The sink task's queue has room for what waits.
    Room,
    /// The sink task answered for a batch: files may be deleted.
    Answered,
    /// Shutdown was requested.
    Stop,
    /// The shutdown deadline passed, or the sink task has ended.
    End,
}

/// Marks the spooler's end in [`Shared::spooling`], however it ends, so that shutdown
/// returns after the spool's files are final.
struct Ended(Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.spooling.send_replace(false);
    }
}

pub(crate) struct Spooler {
    config: SpoolConfig,
    shared: Arc<Shared>,
    /// Oldest first; the last is the one being appended to.
    segments: VecDeque<Segment>,
    writer: BufWriter<File>,
    /// The current file again, for syncing on a blocking thread.
    sync_handle: Arc<File>,
    /// The number of the next record appended.
    appended: u64,
    /// Records appended after the last sync started.
    unsynced: bool,
    /// When the last sync started.
    last_sync: Instant,
    /// A flush marker waits: sync without waiting for the interval.
    urgent: bool,
    /// The sync running on a blocking thread, and what it makes durable.
    syncing: Option<(JoinHandle<io::Result<()>>, SyncPoint)>,
    /// The number of the next record to hand on, and where it is.
    fed: u64,
    reader: Option<Reader>,
    /// Flush markers and the number of records that must be handed on before each.
    flushes: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Appended records in number order (not always consecutive: one that did not fit
    /// [`SpoolConfig::memory_bytes`] is read from its file), and their size.
    kept: VecDeque<Kept>,
    kept_bytes: usize,
    /// Where the file reader must continue after records handed on from memory.
    resume: Option<(u64, u64)>,
    line: Vec<u8>,
    /// Dropped with the spooler, even one never run (a runtime shut down first).
    _ended: Ended,
}

fn spool_error(path: &Path, e: io::Error) -> WriterError {
    WriterError::Spool {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Spooler {
    /// Opens the spool in `config.dir`: counts the records previous processes left there
    /// (as enqueued and replayed) and starts a new file after them.
    pub(super) fn open(config: SpoolConfig, shared: Arc<Shared>) -> Result<Self, WriterError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| spool_error(&dir, e))?;
        let mut found: Vec<u64> = fs::read_dir(&dir)
            .map_err(|e| spool_error(&dir, e))?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?.strip_suffix(".jsonl")?.parse().ok()
            })
            .collect();
        found.sort_unstable();
        let mut segments = VecDeque::new();
        let mut next = 0u64;
        let mut total_bytes = 0u64;
        for index in found {
            let path = segment_path(&dir, index);
            let (records, bytes) = count_records(&path).map_err(|e| spool_error(&path, e))?;
            total_bytes += bytes;
            segments.push_back(Segment {
                index,
                path,
                end: next + records,
                bytes,
                synced_bytes: bytes,
                synced_end: next + records,
            });
            next += records;
        }
        if next > 0 {
            let c = &shared.counters;
            c.enqueued.fetch_add(next, Relaxed);
            c.replayed.fetch_add(next, Relaxed);
            tracing::info!(
                sink = %shared.name,
                records = next,
                spool = %dir.display(),
                "activity spool: writing the records a previous process left"
            );
        }
        shared.counters.spool_bytes.store(total_bytes, Relaxed);
        let index = segments.back().map_or(0, |s| s.index + 1);
        let (writer, sync_handle, segment) = Self::create(&dir, index, next)?;
        segments.push_back(segment);
        Ok(Spooler {
            config,
            segments,
            writer,
            sync_handle,
            appended: next,
            unsynced: false,
            last_sync: Instant::now(),
            urgent: false,
            syncing: None,
            fed: 0,
            reader: None,
            flushes: VecDeque::new(),
            kept: VecDeque::new(),
            kept_bytes: 0,
            resume: None,
            line: Vec::with_capacity(1024),
            _ended: Ended(Arc::clone(&shared)),
            shared,
        })
    }

    /// Appends a record of `size` queued bytes (or counts it failed when the spool is full).
    fn append(&mut self, record: Box<ActivityRecord>, size: usize) {
        self.shared.queued_bytes.fetch_sub(size, Relaxed);
        self.line.clear();
        let ok = super::line::write(&record, &mut self.line).is_ok();
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        let c = &self.shared.counters;
        if !ok || self.bytes() + len > self.config.max_bytes {
            c.failed.fetch_add(1, Relaxed);
            c.spool_full.fetch_add(1, Relaxed);
            tracing::warn!(
                sink = %self.shared.name,
                id = %record.id,
                max_bytes = self.config.max_bytes,
                "activity spool full: a record is not written; raise SpoolConfig::max_bytes \
                 or bring the sink back"
            );
            return;
        }
        if let Err(error) = self.writer.write_all(&self.line) {
            c.failed.fetch_add(1, Relaxed);
            tracing::error!(sink = %self.shared.name, %error, "activity spool: write failed");
            return;
        }
        c.spool_bytes.fetch_add(len, Relaxed);
        let segment = self.current();
        segment.bytes += len;
        segment.end += 1;
        let (index, end_offset) = (segment.index, segment.bytes);
        if self.kept_bytes + size <= self.config.memory_bytes {
            self.kept_bytes += size;
            self.kept.push_back(Kept {
                number: self.appended,
                index,
                end_offset,
                size,
                record,
            });
        }
        self.appended += 1;
        self.unsynced = true;
    }

    /// Runs until the queue is closed (shutdown, or every handle dropped): then takes what is
    /// left on it, syncs, hands on what the sink task takes before the shutdown deadline,
    /// and, once the sink task has ended, deletes what it answered for. Whatever is left stays
    /// for the next start.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Msg>, tx: mpsc::Sender<Msg>) {
        let mut stop = self.shared.stop.subscribe();
        let mut deadline: Option<Instant> = None;
        let mut rx_open = true;
        loop {
            self.truncate(false);
            self.feed(&tx);
            if self.sync_due() {
                self.start_sync();
            }
            if !rx_open && !self.unsynced && self.syncing.is_none() && !self.has_feed() {
                break;
            }
            let mut syncing = self.syncing.take();
            // While a sync runs, the next cannot start: draining on time would spin.
            let drain_at = syncing
                .is_none()
                .then_some(self.last_sync + self.config.sync_interval);
            let wake = {
                let next_sync = self.last_sync + self.config.sync_interval;
                // Records wait for the next sync anyway: once one is appended, the rest are
                // taken when the sync is due (or the queue is half full, or a flush asks),
                // not one wake-up per record — a wake-up per request on the CPUs the
                // requests need (and a futex when the writer has a thread of its own).
                let message = async {
                    match (rx_open, self.unsynced) {
                        (true, false) => Wake::Msg(rx.recv().await),
                        (true, true) => {
                            let due = async {
                                match drain_at {
                                    Some(at) => sleep_until(at).await,
                                    None => std::future::pending().await,
                                }
                            };
                            let _ = race(due, self.shared.spool_wake.notified()).await;
                            Wake::Drain
                        }
                        (false, _) => std::future::pending().await,
                    }
                };
                let sync = async {
                    match (&mut syncing, self.unsynced) {
                        (Some((handle, _)), _) => Wake::Synced(handle.await),
                        (None, true) => {
                            sleep_until(next_sync).await;
                            Wake::Sync
                        }
                        (None, false) => std::future::pending().await,
                    }
                };
                let room = async {
                    match self.has_feed() {
                        true => match tx.reserve().await {
                            Ok(_) => Wake::Room,
                            Err(_) => Wake::End,
                        },
                        false => std::future::pending().await,
                    }
                };
                let answered = async {
                    self.shared.batch_done.notified().await;
                    Wake::Answered
                };
                let stop_or_deadline = async {
                    match deadline {
                        None => {
                            let _ = stop.wait_for(Option::is_some).await;
                            Wake::Stop
                        }
                        Some(at) => {
                            sleep_until(at).await;
                            Wake::End
                        }
                    }
                };
                let first = race(
                    message,
                    race(sync, race(room, race(answered, stop_or_deadline))),
                );
                match first.await {
                    Either::Left(w) => w,
                    Either::Right(Either::Left(w)) => w,
                    Either::Right(Either::Right(Either::Left(w))) => w,
                    Either::Right(Either::Right(Either::Right(Either::Left(w)))) => w,
                    Either::Right(Either::Right(Either::Right(Either::Right(w)))) => w,
                }
            };
            self.syncing = syncing;
            match wake {
                Wake::Msg(Some(msg)) => {
                    self.take(msg);
                    // Take what else is queued without waiting, a batch's worth at most.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(msg) => self.take(msg),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Msg(None) => {
                    rx_open = false;
                    self.urgent = true;
                }
                // What is queued now (not what keeps arriving meanwhile); the queue's end is
                // seen by the next `recv`, after the sync.
                Wake::Drain => {
                    for _ in 0..rx.len() {
                        match rx.try_recv() {
                            Ok(msg) => self.take(msg),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Synced(result) => self.synced(result),
                Wake::Sync | Wake::Room | Wake::Answered => {}
                Wake::Stop => {
                    // Records are refused from now on; what is queued is still taken.
                    deadline = *self.shared.stop.borrow();
                    rx.close();
                }
                // The deadline passed, or the sink task is gone: keep the rest on disk.
                Wake::End => {
                    self.sync_all().await;
                    break;
                }
            }
        }
        drop(tx);
        let mut done = self.shared.done.subscribe();
        let _ = done.wait_for(Option::is_some).await;
        self.truncate(true);
    }

    /// One message off the queue: a record is appended; a flush marker asks for a sync at
    /// once and waits for the records before it to be handed on.
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Record(record, size) => self.append(record, size),
            Msg::Flush(flush) => {
                self.urgent = true;
                self.flushes.push_back((self.appended, flush));
            }
        }
    }
}
