//! [`ActivityQuery`] for [`MemorySink`]: brute force over the records, the reference every
//! other store is tested against.

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::Utc;

use super::{
    ActivityQuery, Cursor, LogPage, LogQuery, QueryError, Stats, StatsBuilder, StatsQuery,
};
use crate::record::{ActivityRecord, RecordKind};
use crate::sink::MemorySink;

#[async_trait]
impl ActivityQuery for MemorySink {
    async fn stats(&self, user_id: &str, query: &StatsQuery) -> Result<Stats, QueryError> {
        let (from, to) = query.dates(Utc::now().date_naive());
        let mut builder = StatsBuilder::new(from, to);
        self.with_records(|records| {
            records
                .iter()
                .filter(|r| r.user_id.as_deref() == Some(user_id))
                .filter(|r| query.include_events || r.kind == RecordKind::Request)
                .for_each(|r| builder.add_record(r));
        });
        Ok(builder.finish())
    }

    async fn log(&self, user_id: &str, query: &LogQuery) -> Result<LogPage, QueryError> {
        let mut rows: Vec<ActivityRecord> = self.with_records(|records| {
            records
                .iter()
                .filter(|r| r.user_id.as_deref() == Some(user_id) && matches(r, query))
                .cloned()
                .collect()
        });
        Ok(page_of(&mut rows, query))
    }
}

fn matches(r: &ActivityRecord, q: &LogQuery) -> bool {
    q.kind.is_none_or(|k| r.kind == k)
        && q.from.is_none_or(|t| r.timestamp >= t)
        && q.to.is_none_or(|t| r.timestamp < t)
        && q.model.as_ref().is_none_or(|m| r.model.as_ref() == Some(m))
        && q.provider
            .as_ref()
            .is_none_or(|p| r.provider.as_deref() == Some(p.as_str()))
}

/// Sorts the matching rows newest first and cuts the page out of them.
fn page_of(rows: &mut [ActivityRecord], q: &LogQuery) -> LogPage {
    rows.sort_by_key(|r| Reverse((r.timestamp, r.id)));
    let total = rows.len() as u64;
    let start = match q.cursor {
        Some(c) => rows.partition_point(|r| (r.timestamp, r.id) >= (c.timestamp, c.id)),
        None => 0,
    };
    let start = start.saturating_add(usize::try_from(q.offset).unwrap_or(usize::MAX));
    let limit = q.clamped_limit() as usize;
    let logs: Vec<ActivityRecord> = rows.iter().skip(start).take(limit).cloned().collect();
    let has_more = rows.len() > start.saturating_add(limit);
    let next_cursor = has_more.then(|| logs.last()).flatten().map(|r| {
        Cursor {
            timestamp: r.timestamp,
            id: r.id,
        }
        .to_string()
    });
    LogPage {
        logs,
        total,
        page: q.page(),
        limit: q.clamped_limit(),
        has_more,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::ActivitySink;

    fn record(user: &str, minutes_ago: i64, model: &str) -> ActivityRecord {
        let mut r = ActivityRecord::new(RecordKind::Request);
        r.user_id = Some(user.to_owned());
        r.timestamp -= chrono::TimeDelta::minutes(minutes_ago);
        r.model = Some(model.to_owned());
        r
    }

    #[tokio::test]
    async fn cursor_pages_cover_every_row_once_and_offsets_agree() {
        let sink = MemorySink::new();
        let mut rows: Vec<_> = (0..23).map(|i| record("a", i % 5, "m")).collect();
        rows.push(record("b", 0, "m"));
        sink.write(&rows).await.unwrap();

        let mut seen = Vec::new();
        let mut q = LogQuery {
            limit: 5,
            ..LogQuery::default()
        };
        loop {
            let page = sink.log("a", &q).await.unwrap();
            assert_eq!(page.total, 23);
            seen.extend(page.logs.iter().map(|r| r.id));
            match page.next_cursor {
                Some(c) => q.cursor = Some(c.parse().unwrap()),
                None => {
                    assert!(!page.has_more);
                    break;
                }
            }
        }
        assert_eq!(seen.len(), 23);
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 23, "no row twice");

        let by_offset = sink
            .log(
                "a",
                &LogQuery::parse([("limit", "5"), ("page", "3")]).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            by_offset.logs.iter().map(|r| r.id).collect::<Vec<_>>(),
            seen[10..15]
        );
        assert!(by_offset.has_more);
        let last = sink
            .log(
                "a",
                &LogQuery::parse([("limit", "5"), ("page", "5")]).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!((last.logs.len(), last.has_more), (3, false));
    }

    #[tokio::test]
    async fn filters_and_users_never_leak() {
        let sink = MemorySink::new();
        sink.write(&[
            record("a", 1, "x"),
            record("a", 2, "y"),
            record("b", 1, "x"),
        ])
        .await
        .unwrap();
        let q = LogQuery::parse([("model", "x")]).unwrap();
        let page = sink.log("a", &q).await.unwrap();
        assert_eq!(page.total, 1);
        assert!(page.logs.iter().all(|r| r.user_id.as_deref() == Some("a")));
        let stats = sink.stats("b", &StatsQuery::default()).await.unwrap();
        assert_eq!(stats.total_requests, 1);
        assert_eq!(stats.by_model["x"].requests, 1);
    }
}
