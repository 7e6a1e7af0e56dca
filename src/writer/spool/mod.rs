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

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

use super::*;
use crate::writer::{SpoolConfig, WriterError};

/// One spool file: the records numbered up to `end` (in handing-on order) since the file
/// before it.
#[derive(Debug)]
struct Segment {
    index: u64,
    path: PathBuf,
    end: u64,
    /// Bytes written (or found) so far.
    bytes: u64,
    /// Bytes and records known to be on disk (synced, or found at start).
    synced_bytes: u64,
    synced_end: u64,
}

/// What a sync makes durable: file `index` up to `bytes`, records up to `end`.
#[derive(Debug, Clone, Copy)]
struct SyncPoint {
    index: u64,
    bytes: u64,
    end: u64,
}

/// A record appended by this process, kept until it is handed on.
struct Kept {
    /// Its number (see [`Spooler::appended`]).
    number: u64,
    /// Its file, and where its line ends there.
    index: u64,
    end_offset: u64,
    /// Its [`ActivityRecord::approx_size`].
    size: usize,
    record: Box<ActivityRecord>,
}

/// Where the next record to hand on is read.
struct Reader {
    index: u64,
    file: BufReader<File>,
    offset: u64,
}

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

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.jsonl"))
}

/// The complete lines of a file that parse as records, and its length.
fn count_records(path: &Path) -> io::Result<(u64, u64)> {
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
fn parse(line: &[u8]) -> Option<ActivityRecord> {
    let body = line.strip_suffix(b"\n")?;
    serde_json::from_slice(body).ok()
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

    /// A new, empty file numbered `index`, whose first record is `first`.
    fn create(
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

    fn current(&mut self) -> &mut Segment {
        self.segments
            .back_mut()
            .expect("the current file is always there")
    }

    fn bytes(&self) -> u64 {
        self.shared.counters.spool_bytes.load(Relaxed)
    }

    /// The records appended and synced so far: everything before this may be handed on.
    /// Files are synced in order, so it is the first file not synced to its end's.
    fn synced_end(&self) -> u64 {
        self.segments
            .iter()
            .find(|s| s.synced_end < s.end)
            .or(self.segments.back())
            .map_or(0, |s| s.synced_end)
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

    /// Whether a sync should start now: records wait for one, none is running, and the
    /// interval has passed (or a flush marker waits).
    fn sync_due(&self) -> bool {
        self.unsynced
            && self.syncing.is_none()
            && (self.urgent || Instant::now() >= self.last_sync + self.config.sync_interval)
    }

    /// Flushes the current file to the kernel and starts its `fdatasync` on a blocking
    /// thread, so that records keep being taken off the queue while the disk works; starts
    /// the next file when this one is full.
    fn start_sync(&mut self) {
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
    fn synced(&mut self, result: Result<io::Result<()>, tokio::task::JoinError>) {
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
    async fn sync_all(&mut self) {
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

    /// The next synced record to hand on: from memory when it was kept, else read from its
    /// file.
    /// With it, its [`ActivityRecord::approx_size`] (kept with a record kept in memory).
    fn read_next(&mut self) -> Option<(Box<ActivityRecord>, usize)> {
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
    fn feed(&mut self, tx: &mpsc::Sender<Msg>) {
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
    fn has_feed(&self) -> bool {
        self.fed < self.synced_end() || self.flushes.front().is_some_and(|(at, _)| *at <= self.fed)
    }

    /// Deletes every file (but the current one) whose records are all answered for; the
    /// current one too when `all` and everything is answered for.
    fn truncate(&mut self, all: bool) {
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

    fn remove(&mut self, segment: &Segment) {
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

/// The number after the last record of file `index`.
fn segment_end(segments: &VecDeque<Segment>, index: u64) -> u64 {
    segments
        .iter()
        .find(|s| s.index == index)
        .map_or(0, |s| s.synced_end)
}
