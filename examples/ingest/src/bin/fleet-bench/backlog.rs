//! `fleet-bench backlog`: `--records` records published through `NatsSink` into a stream of
//! their own, then, for each `--ingesters` setting and run, that many `ingest` processes on a
//! fresh durable consumer (which starts from the stream's first message) and a fresh
//! database, timed from their start until the consumer has nothing pending or unacknowledged.
//! The table must then hold exactly `--records` rows, or the run fails.

use std::time::Duration;

use tokio::time::Instant;
use tower_activity::ActivitySink as _;
use tower_activity::sink::NatsSink;

use crate::args::BacklogArgs;
use crate::env::{self, Database};
use crate::records::record;

/// Records per `NatsSink::write` while publishing.
const PUBLISH_BATCH: usize = 10_000;
/// The longest a run may take.
const RUN_LIMIT: Duration = Duration::from_secs(1_800);

pub async fn run(args: &BacklogArgs) -> Result<(), String> {
    let common = &args.common;
    let dir = env::binaries(&["ingest"])?;
    let stream = env::stream("BACKLOG");
    let outcome: Result<(), String> = async {
        publish(args, &stream).await?;
        for &ingesters in &args.ingesters {
            let mut rates = Vec::new();
            for n in 0..common.runs {
                rates.push(one(args, &dir, &stream, ingesters, n).await?);
            }
            eprintln!(
                "backlog: {ingesters} ingester(s), {:?}: median {:.0} records/s of {} runs",
                common.ingest_flags,
                env::median(&mut rates),
                rates.len()
            );
        }
        Ok(())
    }
    .await;
    env::delete_stream(&common.nats_url, &stream).await;
    outcome
}

/// Publishes the backlog, checking that the stream holds all of it.
async fn publish(
    args: &BacklogArgs,
    stream: &tower_activity::sink::StreamConfig,
) -> Result<(), String> {
    let sink = NatsSink::builder()
        .url(args.common.nats_url.as_str())
        .stream(stream.clone())
        .connection_name("fleet-bench")
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let started = Instant::now();
    for start in (0..args.records).step_by(PUBLISH_BATCH) {
        let end = (start + PUBLISH_BATCH).min(args.records);
        let batch: Vec<_> = (start..end).map(|i| record(i as u64, now)).collect();
        sink.write(&batch)
            .await
            .map_err(|e| format!("publishing: {e}"))?;
    }
    let took = started.elapsed().as_secs_f64();
    let js = env::jetstream(&args.common.nats_url).await?;
    let mut s = js
        .get_stream(&stream.name)
        .await
        .map_err(|e| e.to_string())?;
    let messages = s.info().await.map_err(|e| e.to_string())?.state.messages;
    if messages != args.records as u64 {
        return Err(format!(
            "the stream holds {messages} messages, not {}",
            args.records
        ));
    }
    eprintln!(
        "backlog: {} records published through NatsSink in {took:.1} s ({:.0} records/s, load {})",
        args.records,
        args.records as f64 / took,
        env::load()
    );
    Ok(())
}

/// One run: `ingesters` processes until the backlog is stored; its rate in records/s.
async fn one(
    args: &BacklogArgs,
    dir: &std::path::Path,
    stream: &tower_activity::sink::StreamConfig,
    ingesters: usize,
    n: usize,
) -> Result<f64, String> {
    let common = &args.common;
    let db = Database::create(&common.database_url, "backlog").await?;
    let durable = format!("bench_{ingesters}_{n}");
    let load = env::load();
    let started = Instant::now();
    let mut procs = Vec::new();
    for _ in 0..ingesters {
        procs.push(
            env::ingest(
                dir,
                &common.nats_url,
                &db.url,
                stream,
                &durable,
                &common.ingest_flags,
            )
            .await?,
        );
    }
    let js = env::jetstream(&common.nats_url).await?;
    let s = js
        .get_stream(&stream.name)
        .await
        .map_err(|e| e.to_string())?;
    let took = loop {
        if started.elapsed() > RUN_LIMIT {
            return Err(format!("not ingested within {RUN_LIMIT:?}"));
        }
        if let Ok(info) = s.consumer_info(&durable).await {
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0
            {
                break started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut written, mut batches) = (0, 0);
    for (_, metrics) in &procs {
        let (w, b) = env::ingest_counters(*metrics).await?;
        written += w;
        batches += b;
    }
    for (proc, _) in procs {
        proc.stop().await;
    }
    let rows = rows(&db.url).await?;
    let _ = s.delete_consumer(&durable).await;
    db.drop_it().await;
    if rows != args.records as i64 {
        return Err(format!("the table holds {rows} rows, not {}", args.records));
    }
    let rate = args.records as f64 / took.as_secs_f64();
    eprintln!(
        "backlog: {ingesters} ingester(s), run {}: {rows} rows in {:.2} s = {rate:.0} records/s; \
         {written} written in {batches} batches (mean {:.0}); load {load} → {}",
        n + 1,
        took.as_secs_f64(),
        written as f64 / batches.max(1) as f64,
        env::load()
    );
    Ok(rate)
}

async fn rows(url: &str) -> Result<i64, String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query_scalar("SELECT count(*) FROM activity_log")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())
}
