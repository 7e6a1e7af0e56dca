//! The log query, written once for both backends: filters, newest first, offset or keyset
//! cursor, a real `total`.

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use super::Dialect;
use crate::query::{Cursor, LogPage, LogQuery};
use crate::record::{ActivityRecord, RecordKind};

/// A value bound to a log query placeholder; each backend binds it in its own type (an
/// instant is a `TIMESTAMPTZ` in PostgreSQL, microseconds in SQLite; a day is `YYYY-MM-DD`
/// text in both, cast to `DATE` by PostgreSQL's SQL).
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Instant(DateTime<Utc>),
    Day(NaiveDate),
    Id(Uuid),
    Int(i64),
}

/// The tables a log query reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogTables<'a> {
    /// The records.
    pub(crate) log: &'a str,
    /// The daily rollup (for `total`).
    pub(crate) daily: &'a str,
    /// The select list of a record.
    pub(crate) select_list: &'a str,
}

/// The two statements of one log page and their binds.
///
/// The SQL depends only on which filters are present, so each shape is prepared once per
/// connection and reused; an absent filter is left out rather than written as
/// `($n IS NULL OR …)`, which would keep PostgreSQL from using an index.
///
/// `total` is a count, but not of raw rows where the rollup already has it: whole UTC days
/// of the range are summed from `activity_daily` (which holds, per day, kind, model and
/// provider, exactly the number of rows stored), and only the partial days at the edges of an
/// instant range are counted in the table. A user's total thus costs one rollup row per day
/// and model, not one index entry per record.
#[derive(Debug)]
pub(crate) struct LogSql {
    /// The real number of rows matching the filters.
    pub(crate) count: String,
    /// The page: one row more than the limit, to know whether rows follow.
    pub(crate) page: String,
    count_binds: Vec<Bind>,
    page_binds: Vec<Bind>,
}

/// A statement's binds and its placeholders, in step.
struct Binds {
    dialect: Dialect,
    binds: Vec<Bind>,
}

impl Binds {
    fn new(dialect: Dialect) -> Self {
        Binds {
            dialect,
            binds: Vec::new(),
        }
    }

    /// Adds a bind; returns its placeholder.
    fn push(&mut self, bind: Bind) -> String {
        let is_day = matches!(bind, Bind::Day(_));
        self.binds.push(bind);
        let n = self.binds.len();
        match is_day {
            true => self.dialect.day_placeholder(n),
            false => self.dialect.placeholder(n),
        }
    }

    /// `user_id = … AND kind = … AND model = … AND provider = …` (the filters both tables
    /// have).
    fn key_filter(&mut self, user_id: &str, query: &LogQuery) -> String {
        let mut filter = format!("user_id = {}", self.push(Bind::Text(user_id.to_owned())));
        if let Some(kind) = query.kind {
            let name = match kind {
                RecordKind::Request => "request",
                RecordKind::Event => "event",
            };
            let p = self.push(Bind::Text(name.to_owned()));
            let _ = write!(filter, " AND kind = {p}");
        }
        if let Some(model) = &query.model {
            let p = self.push(Bind::Text(model.clone()));
            let _ = write!(filter, " AND model = {p}");
        }
        if let Some(provider) = &query.provider {
            let p = self.push(Bind::Text(provider.clone()));
            let _ = write!(filter, " AND provider = {p}");
        }
        filter
    }

    /// `timestamp >= from AND timestamp < to`, the bounds that are given.
    fn time_filter(&mut self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
        let mut filter = String::new();
        if let Some(from) = from {
            let _ = write!(
                filter,
                " AND timestamp >= {}",
                self.push(Bind::Instant(from))
            );
        }
        if let Some(to) = to {
            let _ = write!(filter, " AND timestamp < {}", self.push(Bind::Instant(to)));
        }
        filter
    }
}

/// Midnight at the start of an instant's UTC day.
fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

impl LogSql {
    /// The statements for `user_id`'s page `query`.
    pub(crate) fn new(
        dialect: Dialect,
        tables: LogTables<'_>,
        user_id: &str,
        query: &LogQuery,
    ) -> Self {
        let LogTables {
            log,
            daily,
            select_list,
        } = tables;

        // The page.
        let mut b = Binds::new(dialect);
        let mut filter = b.key_filter(user_id, query);
        filter.push_str(&b.time_filter(query.from, query.to));
        let mut page = format!("SELECT {select_list} FROM {log} WHERE {filter}");
        if let Some(Cursor { timestamp, id }) = query.cursor {
            let (t, i) = (b.push(Bind::Instant(timestamp)), b.push(Bind::Id(id)));
            let _ = write!(page, " AND (timestamp, id) < ({t}, {i})");
        }
        let limit = b.push(Bind::Int(i64::from(query.clamped_limit()) + 1));
        let offset = b.push(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
        let _ = write!(
            page,
            " ORDER BY timestamp DESC, id DESC LIMIT {limit} OFFSET {offset}"
        );
        let page_binds = b.binds;

        // The count: whole days from the rollup, the partial days at the edges from the table.
        let first_full = query.from.map(|from| match from == day_start(from) {
            true => from.date_naive(),
            false => from.date_naive().succ_opt().unwrap_or(NaiveDate::MAX),
        });
        let end_full = query.to.map(|to| to.date_naive());
        let mut b = Binds::new(dialect);
        let count = match (first_full, end_full) {
            (Some(first), Some(end)) if first >= end => {
                // Less than a whole day: count the rows.
                let mut filter = b.key_filter(user_id, query);
                filter.push_str(&b.time_filter(query.from, query.to));
                format!("SELECT count(*) FROM {log} WHERE {filter}")
            }
            _ => {
                let mut rollup = b.key_filter(user_id, query);
                if let Some(first) = first_full {
                    let _ = write!(rollup, " AND day >= {}", b.push(Bind::Day(first)));
                }
                if let Some(end) = end_full {
                    let _ = write!(rollup, " AND day < {}", b.push(Bind::Day(end)));
                }
                let mut edges = Vec::new();
                if let (Some(from), Some(first)) = (query.from, first_full) {
                    let first = first.and_time(NaiveTime::MIN).and_utc();
                    if from < first {
                        edges.push(b.time_filter(Some(from), Some(first)));
                    }
                }
                if let Some(to) = query.to {
                    if to > day_start(to) {
                        edges.push(b.time_filter(Some(day_start(to)), Some(to)));
                    }
                }
                let mut count = format!(
                    "SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM {daily} WHERE {rollup}"
                );
                if !edges.is_empty() {
                    let key = b.key_filter(user_id, query);
                    let edges: Vec<String> = edges
                        .iter()
                        .map(|e| format!("({})", e.trim_start_matches(" AND ")))
                        .collect();
                    count = format!(
                        "SELECT ({count}) + (SELECT count(*) FROM {log} WHERE {key} AND ({}))",
                        edges.join(" OR ")
                    );
                }
                count
            }
        };
        LogSql {
            count,
            page,
            count_binds: b.binds,
            page_binds,
        }
    }

    /// The binds of [`count`](Self::count).
    pub(crate) fn count_binds(&self) -> &[Bind] {
        &self.count_binds
    }

    /// The binds of [`page`](Self::page).
    pub(crate) fn page_binds(&self) -> &[Bind] {
        &self.page_binds
    }
}

/// The page from the rows the page statement returned (at most one more than the limit) and
/// the count.
pub(crate) fn log_page(query: &LogQuery, mut rows: Vec<ActivityRecord>, total: u64) -> LogPage {
    let limit = query.clamped_limit();
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more.then(|| rows.last()).flatten().map(|r| {
        Cursor {
            timestamp: r.timestamp,
            id: r.id,
        }
        .to_string()
    });
    LogPage {
        logs: rows,
        total,
        page: query.page(),
        limit,
        has_more,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: LogTables<'static> = LogTables {
        log: "l",
        daily: "d",
        select_list: "id",
    };

    #[test]
    fn absent_filters_are_left_out_and_placeholders_follow_the_binds() {
        let q = LogQuery::parse([("model", "m"), ("limit", "10")]).unwrap();
        let sql = LogSql::new(Dialect::Postgres, TABLES, "u", &q);
        assert_eq!(
            sql.page,
            "SELECT id FROM l WHERE user_id = $1 AND model = $2 \
             ORDER BY timestamp DESC, id DESC LIMIT $3 OFFSET $4"
        );
        assert!(
            matches!(sql.page_binds()[2], Bind::Int(11)),
            "one row more than the limit"
        );
        assert_eq!(
            sql.count,
            "SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM d WHERE user_id = $1 AND model = $2",
            "no time range: the rollup alone"
        );

        let c = Cursor {
            timestamp: Utc::now(),
            id: Uuid::nil(),
        };
        let q = LogQuery::parse([("cursor", c.to_string().as_str())]).unwrap();
        let sql = LogSql::new(Dialect::Sqlite, TABLES, "u", &q);
        assert!(
            sql.page.contains("AND (timestamp, id) < (?2, ?3)"),
            "{}",
            sql.page
        );
        assert_eq!(sql.count_binds().len(), 1, "the count ignores the cursor");
    }

    #[test]
    fn whole_days_are_counted_from_the_rollup_and_partial_days_from_the_table() {
        let q = LogQuery::parse([("from", "2026-11-01"), ("to", "2026-11-03")]).unwrap();
        let sql = LogSql::new(Dialect::Postgres, TABLES, "u", &q);
        assert_eq!(
            sql.count,
            "SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM d \
             WHERE user_id = $1 AND day >= $2::date AND day < $3::date"
        );

        let q = LogQuery::parse([
            ("from", "2026-11-01T12:00:00Z"),
            ("to", "2026-11-03T06:00:00Z"),
        ])
        .unwrap();
        let sql = LogSql::new(Dialect::Sqlite, TABLES, "u", &q);
        assert!(
            sql.count.contains("day >= ?2 AND day < ?3"),
            "{}",
            sql.count
        );
        assert!(
            sql.count.contains(
                "(timestamp >= ?4 AND timestamp < ?5) OR (timestamp >= ?6 AND timestamp < ?7)"
            ),
            "{}",
            sql.count
        );
        assert!(matches!(sql.count_binds()[1], Bind::Day(d) if d.to_string() == "2026-11-02"));

        let q = LogQuery::parse([
            ("from", "2026-11-01T12:00:00Z"),
            ("to", "2026-11-01T18:00:00Z"),
        ])
        .unwrap();
        let sql = LogSql::new(Dialect::Sqlite, TABLES, "u", &q);
        assert!(
            sql.count.starts_with("SELECT count(*) FROM l"),
            "{}",
            sql.count
        );
    }
}
