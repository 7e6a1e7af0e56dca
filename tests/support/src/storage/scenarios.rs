//! What every SQL sink must do, each checked against `MemorySink` (the reference) given the
//! same records.

use std::collections::HashSet;
use std::time::Duration;

use tower_activity::query::{ActivityQuery, LogPage, LogQuery, StatsQuery};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityRecord, ActivitySink, ActivityWriter, WriterConfig};
use uuid::Uuid;

use crate::storage::data::{day_ago, empty_record, full_record, log_rows, record};

/// The reference holding `records`.
pub async fn reference(records: &[ActivityRecord]) -> MemorySink {
    let memory = MemorySink::new();
    memory.write(records).await.unwrap();
    memory
}

/// Every field of a record survives write → log unchanged; nulls stay null; a NUL character
/// comes back as U+FFFD.
pub async fn round_trip<S: ActivitySink + ActivityQuery>(sink: &S) {
    let full = full_record("rt");
    let mut empty = empty_record("rt");
    empty.timestamp = full.timestamp - chrono::TimeDelta::microseconds(1);
    let mut nul = record("rt", full.timestamp - chrono::TimeDelta::seconds(1));
    nul.model = Some("bad\0model".into());
    nul.service_tier = Some("tier\0".into());
    nul.metadata.insert("k\0".into(), "v\0".into());
    sink.write(&[full.clone(), empty.clone(), nul.clone()])
        .await
        .unwrap();

    let page = sink.log("rt", &LogQuery::default()).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.logs[0], full, "every field of the full record");
    assert_eq!(page.logs[1], empty, "every null stays null");
    assert_eq!(
        page.logs[0].cost_usd.unwrap().to_string(),
        "12.345678901234567890123456",
        "the cost keeps every digit"
    );
    let back = &page.logs[2];
    assert_eq!(back.model.as_deref(), Some("bad\u{FFFD}model"));
    assert_eq!(back.service_tier.as_deref(), Some("tier\u{FFFD}"));
    assert_eq!(back.metadata["k\u{FFFD}"], "v\u{FFFD}");
    let mut expected = nul.clone();
    expected.model = back.model.clone();
    expected.service_tier = back.service_tier.clone();
    expected.metadata = back.metadata.clone();
    assert_eq!(*back, expected, "only the NUL characters changed");
}

/// The stats of every user and several ranges equal the reference's.
pub async fn stats_match<S: ActivitySink + ActivityQuery>(sink: &S, records: &[ActivityRecord]) {
    // Two batches, the second overlapping the first: a retry must not count twice.
    let half = records.len() / 2;
    sink.write(&records[..half]).await.unwrap();
    sink.write(records).await.unwrap();
    let memory = reference(records).await;
    let today = chrono::Utc::now().date_naive();
    let queries = [
        StatsQuery::default(),
        StatsQuery::parse([("days", "1")]).unwrap(),
        StatsQuery::parse([("days", "30"), ("include_events", "true")]).unwrap(),
        StatsQuery::between(today - chrono::Days::new(9), today - chrono::Days::new(3)).unwrap(),
    ];
    for user in ["alice", "bob", "carol", "nobody"] {
        for q in &queries {
            let want = memory.stats(user, q).await.unwrap();
            let got = sink.stats(user, q).await.unwrap();
            assert_eq!(got, want, "stats of {user} for {q:?}");
        }
    }
}

/// Offset and cursor pages, with and without filters, equal the reference's; cursor pages
/// cover every row exactly once.
pub async fn pagination<S: ActivitySink + ActivityQuery>(sink: &S) {
    let mut rows = log_rows("pager", 240);
    rows.extend(log_rows("other", 30));
    for chunk in rows.chunks(100) {
        sink.write(chunk).await.unwrap();
    }
    let memory = reference(&rows).await;
    let same = |got: &LogPage, want: &LogPage, what: &str| {
        assert_eq!(got, want, "{what}");
    };

    // Instants off midnight: `total` adds whole days from the rollup and edge days from rows.
    let at = |days, minutes: i64| day_ago(days, minutes * 60_000_000).to_rfc3339();
    let (d2_0030, d2_0045, d3_1200, d1_0600) = (at(2, 30), at(2, 45), at(3, 720), at(1, 360));
    let filters: [&[(&str, &str)]; 9] = [
        &[],
        &[("model", "claude")],
        &[("provider", "OpenAI"), ("kind", "request")],
        &[("kind", "event")],
        &[("model", "nope")],
        &[
            ("from", "2000-01-01"),
            ("to", "2999-12-31"),
            ("model", "gemini"),
        ],
        &[("from", &d2_0030)],
        &[
            ("from", &d3_1200),
            ("to", &d2_0045),
            ("provider", "Anthropic"),
        ],
        &[("from", &d3_1200), ("to", &d1_0600)],
    ];
    for filter in filters {
        for limit in ["10", "7", "1000"] {
            // Offset pages, up to one past the end.
            for page in 1..=26 {
                let page = page.to_string();
                let mut pairs = filter.to_vec();
                pairs.extend([("limit", limit), ("page", page.as_str())]);
                let q = LogQuery::parse(pairs).unwrap();
                let want = memory.log("pager", &q).await.unwrap();
                let got = sink.log("pager", &q).await.unwrap();
                same(
                    &got,
                    &want,
                    &format!("{filter:?} limit {limit} page {page}"),
                );
                if want.logs.is_empty() {
                    break;
                }
            }
            // Cursor pages.
            let mut pairs = filter.to_vec();
            pairs.push(("limit", limit));
            let mut q = LogQuery::parse(pairs).unwrap();
            let mut seen = Vec::new();
            loop {
                let want = memory.log("pager", &q).await.unwrap();
                let got = sink.log("pager", &q).await.unwrap();
                same(
                    &got,
                    &want,
                    &format!("{filter:?} limit {limit} cursor {:?}", q.cursor),
                );
                seen.extend(got.logs.iter().map(|r| r.id));
                match got.next_cursor {
                    Some(c) => q.cursor = Some(c.parse().unwrap()),
                    None => break,
                }
            }
            let total = memory.log("pager", &q).await.unwrap().total as usize;
            let unique: HashSet<Uuid> = seen.iter().copied().collect();
            assert_eq!(
                (seen.len(), unique.len()),
                (total, total),
                "{filter:?}: every row once"
            );
        }
    }

    // The edge: 240 rows in pages of 10 end exactly on page 24.
    let q = LogQuery::parse([("limit", "10"), ("page", "24")]).unwrap();
    let last = sink.log("pager", &q).await.unwrap();
    assert_eq!(
        (last.total, last.logs.len(), last.has_more),
        (240, 10, false)
    );
    assert_eq!(last.next_cursor, None);
    let q = LogQuery::parse([("limit", "10"), ("page", "23")]).unwrap();
    assert!(sink.log("pager", &q).await.unwrap().has_more);
}

/// A user never sees another user's rows, whatever the filters or cursor.
pub async fn isolation<S: ActivitySink + ActivityQuery>(sink: &S) {
    let a = log_rows("user_a", 40);
    let b = log_rows("user_b", 40);
    let mut anonymous = record("x", day_ago(0, 1));
    anonymous.user_id = None;
    sink.write(&[a.clone(), b.clone(), vec![anonymous]].concat())
        .await
        .unwrap();
    let b_cursor = format!(
        "{:016x}{}",
        (b[0].timestamp.timestamp_micros() + 1) as u64,
        Uuid::max().simple()
    );
    let filters: [&[(&str, &str)]; 5] = [
        &[],
        &[("model", "claude")],
        &[("provider", "Anthropic"), ("kind", "event")],
        &[("limit", "1000")],
        &[("cursor", b_cursor.as_str())],
    ];
    for filter in filters {
        let page = sink
            .log("user_a", &LogQuery::parse(filter.to_vec()).unwrap())
            .await
            .unwrap();
        assert!(!page.logs.is_empty(), "{filter:?}");
        assert!(
            page.logs
                .iter()
                .all(|r| r.user_id.as_deref() == Some("user_a")),
            "{filter:?}: only user_a's rows"
        );
        assert!(page.total <= 40);
    }
    let stats = sink
        .stats(
            "user_a",
            &StatsQuery::parse([("include_events", "true")]).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stats.total_requests, 40);
    assert_eq!(sink.log("", &LogQuery::default()).await.unwrap().total, 0);
    assert_eq!(
        sink.log("user_c", &LogQuery::default())
            .await
            .unwrap()
            .total,
        0
    );
}

/// The same batch written twice (and a batch with an id twice) keeps one copy, counted once.
pub async fn idempotency<S: ActivitySink + ActivityQuery>(sink: &S) {
    let mut rows = log_rows("idem", 50);
    for r in &mut rows {
        r.timestamp = day_ago(0, 1_000_000);
        r.cost_usd = Some(rust_decimal::Decimal::new(123, 9));
    }
    sink.write(&rows).await.unwrap();
    sink.write(&rows).await.unwrap();
    let doubled = [rows[..10].to_vec(), rows[..10].to_vec()].concat();
    sink.write(&doubled).await.unwrap();
    let page = sink.log("idem", &LogQuery::default()).await.unwrap();
    assert_eq!(page.total, 50);
    let q = StatsQuery::parse([("days", "1"), ("include_events", "true")]).unwrap();
    let stats = sink.stats("idem", &q).await.unwrap();
    assert_eq!(
        stats.total_requests, 50,
        "the rollup counts each record once"
    );
    assert_eq!(stats.total_spend.to_string(), "0.00000615");
    assert_eq!(
        stats,
        reference(&rows).await.stats("idem", &q).await.unwrap()
    );
}

/// `delete_older_than(days)` removes whole old days, records and rollup alike.
pub async fn retention<S, F, Fut>(sink: &S, delete_older_than: F)
where
    S: ActivitySink + ActivityQuery,
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<u64, tower_activity::StorageError>>,
{
    let rows: Vec<ActivityRecord> = [0, 1, 29, 30, 45]
        .iter()
        .map(|&days| record("ret", day_ago(days, 5_000_000)))
        .collect();
    sink.write(&rows).await.unwrap();
    let last_30 = StatsQuery::parse([("days", "30")]).unwrap();
    let before = sink.stats("ret", &last_30).await.unwrap();
    assert_eq!(before.total_requests, 3);

    assert!(delete_older_than(0).await.is_err(), "0 days is refused");
    assert_eq!(delete_older_than(30).await.unwrap(), 2, "days 30 and 45 go");
    assert_eq!(
        sink.stats("ret", &last_30).await.unwrap(),
        before,
        "kept days unchanged"
    );
    let all = StatsQuery::parse([("days", "60")]).unwrap();
    let after = sink.stats("ret", &all).await.unwrap();
    assert_eq!(
        after.total_requests, 3,
        "the rollup lost the deleted days too"
    );
    assert_eq!(
        after,
        reference(&rows[..3])
            .await
            .stats("ret", &all)
            .await
            .unwrap()
    );
    assert_eq!(
        sink.log("ret", &LogQuery::default()).await.unwrap().total,
        3
    );
    assert_eq!(delete_older_than(30).await.unwrap(), 0, "idempotent");
}

/// The writer isolates a record the store rejects (the caller made `endpoint = '/poison'`
/// fail) and writes the rest of its batch; the rollup counts only what was written.
pub async fn poison<S: ActivitySink + ActivityQuery + Clone>(sink: &S) {
    let mut rows = log_rows("poison", 300);
    rows[123].endpoint = "/poison".into();
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(100));
    for r in &rows {
        assert!(writer.record(r.clone()));
    }
    let stats = writer.shutdown(Duration::from_secs(30)).await;
    assert_eq!((stats.written, stats.failed), (299, 1), "{stats:?}");
    let page = sink
        .log("poison", &LogQuery::parse([("limit", "1000")]).unwrap())
        .await
        .unwrap();
    assert_eq!(page.total, 299);
    assert!(page.logs.iter().all(|r| r.id != rows[123].id));
    let good: Vec<ActivityRecord> = rows
        .iter()
        .filter(|r| r.id != rows[123].id)
        .cloned()
        .collect();
    let q = StatsQuery::parse([("days", "7"), ("include_events", "true")]).unwrap();
    assert_eq!(
        sink.stats("poison", &q).await.unwrap(),
        reference(&good).await.stats("poison", &q).await.unwrap()
    );
}

/// Records queued right before `shutdown` are all written.
pub async fn shutdown_drains<S: ActivitySink + ActivityQuery + Clone>(sink: &S) {
    let rows: Vec<ActivityRecord> = (0..5_000).map(|i| record("drain", day_ago(0, i))).collect();
    let writer = ActivityWriter::start(sink.clone(), WriterConfig::default().with_batch_size(500));
    for r in &rows {
        assert!(writer.record(r.clone()));
    }
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (stats.written, stats.failed, stats.queue_depth),
        (5_000, 0, 0)
    );
    let page = sink.log("drain", &LogQuery::default()).await.unwrap();
    assert_eq!(page.total, 5_000);
    let q = StatsQuery::parse([("days", "1")]).unwrap();
    assert_eq!(sink.stats("drain", &q).await.unwrap().total_requests, 5_000);
}
