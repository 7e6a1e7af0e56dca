//! The log query, written once for both backends: filters, newest first, offset or keyset
//! cursor, a real `total`.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Dialect;
use crate::query::{Cursor, LogPage, LogQuery};
use crate::record::{ActivityRecord, Kind};

/// A value bound to a log query placeholder; each backend binds it in its own type (an
/// instant is a `TIMESTAMPTZ` in PostgreSQL, microseconds in SQLite).
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Instant(DateTime<Utc>),
    Id(Uuid),
    Int(i64),
}

/// The two statements of one log page and their binds.
///
/// The SQL depends only on which filters are present, so each shape is prepared once per
/// connection and reused; an absent filter is left out rather than written as
/// `($n IS NULL OR …)`, which would keep PostgreSQL from using the filter's index.
#[derive(Debug)]
pub(crate) struct LogSql {
    /// `SELECT count(*)` of every row matching the filters.
    pub(crate) count: String,
    /// The page: one row more than the limit, to know whether rows follow.
    pub(crate) page: String,
    binds: Vec<Bind>,
    filters: usize,
}

impl LogSql {
    /// The statements for `user_id`'s page `query` over `table`, selecting `select_list`.
    pub(crate) fn new(
        dialect: Dialect,
        table: &str,
        select_list: &str,
        user_id: &str,
        query: &LogQuery,
    ) -> Self {
        let mut binds = vec![Bind::Text(user_id.to_owned())];
        let mut filter = format!("user_id = {}", dialect.placeholder(1));
        let mut add = |binds: &mut Vec<Bind>, condition: &str, bind: Bind| {
            binds.push(bind);
            let _ = write!(
                filter,
                " AND {condition} {}",
                dialect.placeholder(binds.len())
            );
        };
        if let Some(kind) = query.kind {
            let name = match kind {
                Kind::Request => "request",
                Kind::Event => "event",
            };
            add(&mut binds, "kind =", Bind::Text(name.to_owned()));
        }
        if let Some(from) = query.from {
            add(&mut binds, "timestamp >=", Bind::Instant(from));
        }
        if let Some(to) = query.to {
            add(&mut binds, "timestamp <", Bind::Instant(to));
        }
        if let Some(model) = &query.model {
            add(&mut binds, "model =", Bind::Text(model.clone()));
        }
        if let Some(provider) = &query.provider {
            add(&mut binds, "provider =", Bind::Text(provider.clone()));
        }
        let filters = binds.len();
        let count = format!("SELECT count(*) FROM {table} WHERE {filter}");

        let mut page = format!("SELECT {select_list} FROM {table} WHERE {filter}");
        if let Some(Cursor { timestamp, id }) = query.cursor {
            binds.push(Bind::Instant(timestamp));
            binds.push(Bind::Id(id));
            let _ = write!(
                page,
                " AND (timestamp, id) < ({}, {})",
                dialect.placeholder(binds.len() - 1),
                dialect.placeholder(binds.len())
            );
        }
        binds.push(Bind::Int(i64::from(query.clamped_limit()) + 1));
        binds.push(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
        let _ = write!(
            page,
            " ORDER BY timestamp DESC, id DESC LIMIT {} OFFSET {}",
            dialect.placeholder(binds.len() - 1),
            dialect.placeholder(binds.len())
        );
        LogSql {
            count,
            page,
            binds,
            filters,
        }
    }

    /// The binds of [`count`](Self::count).
    pub(crate) fn count_binds(&self) -> &[Bind] {
        &self.binds[..self.filters]
    }

    /// The binds of [`page`](Self::page).
    pub(crate) fn page_binds(&self) -> &[Bind] {
        &self.binds
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

    #[test]
    fn absent_filters_are_left_out_and_placeholders_follow_the_binds() {
        let q = LogQuery::parse([("model", "m"), ("limit", "10")]).unwrap();
        let sql = LogSql::new(Dialect::Postgres, "t", "id", "u", &q);
        assert_eq!(
            sql.count,
            "SELECT count(*) FROM t WHERE user_id = $1 AND model = $2"
        );
        assert!(
            sql.page
                .ends_with("ORDER BY timestamp DESC, id DESC LIMIT $3 OFFSET $4")
        );
        assert_eq!((sql.count_binds().len(), sql.page_binds().len()), (2, 4));
        assert!(
            matches!(sql.page_binds()[2], Bind::Int(11)),
            "one row more than the limit"
        );

        let c = Cursor {
            timestamp: Utc::now(),
            id: Uuid::nil(),
        };
        let q = LogQuery::parse([("cursor", c.to_string().as_str())]).unwrap();
        let sql = LogSql::new(Dialect::Sqlite, "t", "id", "u", &q);
        assert!(
            sql.page.contains("AND (timestamp, id) < (?2, ?3)"),
            "{}",
            sql.page
        );
        assert!(!sql.count.contains("?2"), "the count ignores the cursor");
    }
}
