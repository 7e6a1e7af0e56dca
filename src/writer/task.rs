//! The background task: collects records into batches, writes them through the sink with
//! retries and poison isolation, and drains on shutdown.

use super::*;

/// The shutdown signal as the task sees it.
struct Stop {
    rx: watch::Receiver<Option<Instant>>,
    deadline: Option<Instant>,
}

impl Stop {
    /// Resolves the first time shutdown is requested; pending after that.
    async fn requested(&mut self) {
        if self.deadline.is_none() {
            while self.rx.changed().await.is_ok() {
                if let Some(at) = *self.rx.borrow_and_update() {
                    self.deadline = Some(at);
                    return;
                }
            }
        }
        std::future::pending().await
    }

    /// Whether the shutdown deadline has passed.
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }

    /// Runs `fut` to completion, or until the shutdown deadline (requested before or during the
    /// run) passes: then `None`, and `fut` is dropped.
    async fn run<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        if self.deadline.is_none() {
            match race(fut.as_mut(), self.requested()).await {
                Either::Left(out) => return Some(out),
                Either::Right(()) => {}
            }
        }
        let at = self.deadline?;
        timeout_at(at, fut).await.ok()
    }
}

pub(super) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures; resolves with the first to finish (`a` first when both are ready).
pub(super) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// Runs a sink call, turning a panic into [`SinkError::Permanent`] so that one bad record cannot
/// kill the writer (and every later record with it).
async fn catch_panic<F>(fut: F) -> Result<(), SinkError>
where
    F: Future<Output = Result<(), SinkError>>,
{
    let mut fut = pin!(fut);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(SinkError::permanent("the sink panicked"))),
        },
    )
    .await
}

/// What the collector saw.
enum Next {
    /// A batch is ready (full, due, or a flush marker asks for it); more may follow.
    Batch,
    /// The queue is closed and empty: write the batch and end.
    End,
}

/// The background task.
pub(super) struct Task<S> {
    sink: S,
    rx: mpsc::Receiver<Msg>,
    rx_closed: bool,
    stop: Stop,
    shared: Arc<Shared>,
    /// Records counted failed because the shutdown deadline passed.
    abandoned: u64,
    config: WriterConfig,
    /// Whether the task closes its queue when shutdown is requested. Not behind a spool:
    /// there the spooler feeds the queue until it has handed on every synced record, then
    /// drops its end.
    closes_queue: bool,
}

/// Publishes the final stats when the task ends, even by a panic or a runtime shutdown, so
/// that `shutdown` and `flush` never wait forever.
struct Finish(Arc<Shared>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.closed.store(true, Relaxed);
        self.0.report_drops();
        let stats = self.0.counters.snapshot();
        self.0.done.send_if_modified(|done| {
            let first = done.is_none();
            if first {
                *done = Some(stats);
            }
            first
        });
    }
}

impl<S: ActivitySink> Task<S> {
    /// The task for a writer over `sink`, reading `rx`.
    pub(super) fn new(
        sink: S,
        rx: mpsc::Receiver<Msg>,
        shared: Arc<Shared>,
        config: WriterConfig,
        closes_queue: bool,
    ) -> Self {
        Task {
            sink,
            rx,
            rx_closed: false,
            stop: Stop {
                rx: shared.stop.subscribe(),
                deadline: None,
            },
            shared,
            abandoned: 0,
            config,
            closes_queue,
        }
    }

    pub(super) async fn run(mut self) {
        let _finish = Finish(Arc::clone(&self.shared));
        let mut batch = Vec::with_capacity(self.config.batch_size.min(4_096));
        let mut flushes = Vec::new();
        // The queued bytes of the records in `batch`, as counted when they were queued.
        let mut bytes = 0;
        loop {
            let next = self.collect(&mut batch, &mut bytes, &mut flushes).await;
            if !batch.is_empty() {
                self.write_batch(&batch).await;
                self.shared
                    .queued_bytes
                    .fetch_sub(std::mem::take(&mut bytes), Relaxed);
                // Records given up at the deadline are not answered for: a spool keeps them
                // (and everything after them) for the next start.
                if self.abandoned == 0 {
                    self.shared.resolved.fetch_add(batch.len() as u64, Relaxed);
                    self.shared.batch_done.notify_one();
                }
                batch.clear();
            }
            for flush in flushes.drain(..) {
                let _ = flush.send(());
            }
            self.shared.report_drops();
            if let Next::End = next {
                break;
            }
        }
        if self.abandoned > 0 {
            tracing::warn!(
                sink = %self.shared.name,
                failed = self.abandoned,
                "activity writer shutdown deadline passed: {} record(s) not written, counted as failed",
                self.abandoned
            );
        }
    }

    /// Fills `batch` until it is full, its interval since the first record has passed, a flush
    /// marker arrives, or the queue ends. Once shutdown is requested, takes what is queued
    /// without waiting.
    async fn collect(
        &mut self,
        batch: &mut Vec<ActivityRecord>,
        bytes: &mut usize,
        flushes: &mut Vec<oneshot::Sender<()>>,
    ) -> Next {
        let mut due: Option<Instant> = None;
        loop {
            if batch.len() >= self.config.batch_size {
                return Next::Batch;
            }
            let msg = if let Some(deadline) = self.stop.deadline {
                if !self.rx_closed && self.closes_queue {
                    // New sends fail from now on; what is queued stays readable.
                    self.rx.close();
                    self.rx_closed = true;
                }
                // A closed queue never waits for new messages, so the deadline only guards
                // against a sender stuck mid-send (or, behind a spool, a spooler still
                // handing on records).
                timeout_at(deadline, self.rx.recv())
                    .await
                    .unwrap_or_default()
            } else if let Some(at) = due {
                // A batch is open. Rather than waking for every record (a task wake-up per
                // request, on the CPUs the requests need), sleep until the batch is due, or
                // until the queue holds a full batch or a flush marker (`wake`), then take
                // what is queued without waiting.
                match self.rx.try_recv() {
                    Ok(msg) => Some(msg),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if Instant::now() >= at {
                            return Next::Batch;
                        }
                        let needed = self.config.batch_size - batch.len();
                        // SeqCst: a wake missed by a race would only delay the batch to its due time.
                        self.shared.wake_at.store(needed, SeqCst);
                        if self.rx.len() >= needed {
                            continue;
                        }
                        let woken = race(sleep_until(at), self.shared.wake.notified());
                        // Due, woken, or shutdown requested (then drained from the next turn
                        // on): look at the queue again.
                        let _ = race(woken, self.stop.requested()).await;
                        continue;
                    }
                }
            } else {
                match race(self.rx.recv(), self.stop.requested()).await {
                    Either::Left(msg) => msg,
                    // Shutdown requested: drain from the next turn on.
                    Either::Right(()) => continue,
                }
            };
            match msg {
                Some(Msg::Record(record, size)) => {
                    if batch.is_empty() {
                        due = Some(Instant::now() + self.config.batch_interval);
                    }
                    batch.push(*record);
                    *bytes += size;
                }
                Some(Msg::Flush(flush)) => {
                    flushes.push(flush);
                    return Next::Batch;
                }
                None => return Next::End,
            }
        }
    }

    /// Writes one batch taken from the queue, and times it.
    async fn write_batch(&mut self, batch: &[ActivityRecord]) {
        let c = &self.shared.counters;
        if self.stop.expired() {
            self.abandon(batch.len());
            return;
        }
        c.batches.fetch_add(1, Relaxed);
        let started = Instant::now();
        self.write_or_split(batch).await;
        let took = micros(started.elapsed());
        let c = &self.shared.counters;
        c.last_batch_micros.store(took, Relaxed);
        c.batch_micros_total.fetch_add(took, Relaxed);
    }

    /// Writes `batch`, retrying transient failures and bisecting on permanent ones, until every
    /// record is written or failed.
    fn write_or_split<'a>(
        &'a mut self,
        batch: &'a [ActivityRecord],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut backoff = self.config.retry_backoff;
            loop {
                if self.stop.expired() {
                    return self.abandon(batch.len());
                }
                let call = timeout(
                    self.config.sink_timeout,
                    catch_panic(self.sink.write(batch)),
                );
                let Some(result) = self.stop.run(call).await else {
                    return self.abandon(batch.len());
                };
                let c = &self.shared.counters;
                let result = result.unwrap_or_else(|_| {
                    c.sink_timeouts.fetch_add(1, Relaxed);
                    Err(SinkError::transient(format!(
                        "the sink did not answer within {:?} (WriterConfig::sink_timeout)",
                        self.config.sink_timeout
                    )))
                });
                match result {
                    Ok(()) => {
                        c.written.fetch_add(batch.len() as u64, Relaxed);
                        return;
                    }
                    Err(SinkError::Transient(error)) => {
                        tracing::warn!(
                            sink = %self.shared.name,
                            %error,
                            records = batch.len(),
                            retry_in = ?backoff,
                            "activity sink failed transiently; retrying the batch"
                        );
                        if self.stop.run(sleep(backoff)).await.is_none() {
                            return self.abandon(batch.len());
                        }
                        self.shared.counters.retried.fetch_add(1, Relaxed);
                        backoff = (backoff * 2).min(self.config.max_backoff);
                    }
                    Err(SinkError::Permanent(error)) => {
                        if let [record] = batch {
                            c.failed.fetch_add(1, Relaxed);
                            tracing::error!(
                                sink = %self.shared.name,
                                id = %record.id,
                                %error,
                                "activity sink rejected a record permanently; it is not written"
                            );
                            return;
                        }
                        tracing::debug!(
                            %error,
                            records = batch.len(),
                            "activity sink rejected a batch permanently; splitting it"
                        );
                        let (left, right) = batch.split_at(batch.len() / 2);
                        self.write_or_split(left).await;
                        self.write_or_split(right).await;
                        return;
                    }
                }
            }
        })
    }

    /// Counts records given up on at the shutdown deadline.
    fn abandon(&mut self, records: usize) {
        self.abandoned += records as u64;
        self.shared
            .counters
            .failed
            .fetch_add(records as u64, Relaxed);
    }
}
