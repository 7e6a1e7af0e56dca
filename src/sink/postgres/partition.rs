//! `activity_log`'s time partitions: which exist, creating the ones a batch (or the time
//! ahead) needs, and dropping the ones retention no longer keeps.
//!
//! Partitions are ranges of `timestamp` on UTC month (or day) boundaries, named after their
//! start: `{prefix}activity_log_y2026m12` (a month), `{prefix}activity_log_y2026m12d02` (a
//! day). The table may also have a legacy partition from the in-place migration (migration 3:
//! the old table attached as the range up to the month after its newest row) and partitions
//! an operator made: each is read back from the catalog as the range it covers, so a new
//! partition is only made where no range is, and is a day when a whole period would overlap
//! one (a legacy range, or days made while the period was `Day`).

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use sqlx::{Executor, PgPool, Postgres, Row, Transaction};

use super::SET_TIMEOUTS;
use crate::sink::sql::TableNames;

/// How long each partition of `activity_log` is; see
/// [`PostgresSink::with_partitions`](super::PostgresSink::with_partitions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionPeriod {
    /// A partition per UTC calendar month (the default): 12 tables a year.
    #[default]
    Month,
    /// A partition per UTC day: retention drops exactly the days it deletes, for tables that
    /// take millions of rows a day.
    Day,
}

impl PartitionPeriod {
    /// The start of the period holding `day`.
    fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            PartitionPeriod::Month => day.with_day(1).unwrap_or(day),
            PartitionPeriod::Day => day,
        }
    }

    /// The start of the next period after the one starting at `start`.
    fn next(self, start: NaiveDate) -> NaiveDate {
        let next = match self {
            PartitionPeriod::Month => start.checked_add_months(Months::new(1)),
            PartitionPeriod::Day => start.checked_add_days(Days::new(1)),
        };
        next.unwrap_or(NaiveDate::MAX)
    }

    /// The partition name's suffix for the period starting at `start`.
    fn suffix(self, start: NaiveDate) -> String {
        match self {
            PartitionPeriod::Month => start.format("y%Ym%m").to_string(),
            PartitionPeriod::Day => start.format("y%Ym%md%d").to_string(),
        }
    }
}

/// A partition's range: `from` (inclusive) to `to` (exclusive); `None` is unbounded
/// (`MINVALUE` / `MAXVALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) from: Option<DateTime<Utc>>,
    pub(super) to: Option<DateTime<Utc>>,
}

impl Range {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| f <= t) && self.to.is_none_or(|to| t < to)
    }

    fn overlaps(&self, other: &Range) -> bool {
        let starts_before_other_ends = match (self.from, other.to) {
            (Some(f), Some(to)) => f < to,
            _ => true,
        };
        let ends_after_other_starts = match (self.to, other.from) {
            (Some(to), Some(f)) => f < to,
            _ => true,
        };
        starts_before_other_ends && ends_after_other_starts
    }
}

/// Midnight UTC at the start of `day`.
fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

/// Parses a partition bound as `pg_get_expr` prints it with `TimeZone = 'UTC'`:
/// `FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')`, either side
/// possibly `MINVALUE` / `MAXVALUE`. `None` for anything else (a `DEFAULT` partition).
pub(super) fn parse_bound(bound: &str) -> Option<Range> {
    let rest = bound.strip_prefix("FOR VALUES FROM (")?;
    let (from, rest) = rest.split_once(") TO (")?;
    let to = rest.strip_suffix(')')?;
    let side = |s: &str| -> Option<Option<DateTime<Utc>>> {
        match s {
            "MINVALUE" | "MAXVALUE" => Some(None),
            quoted => {
                let text = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
                DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
                    .ok()
                    .map(|t| Some(t.with_timezone(&Utc)))
            }
        }
    };
    Some(Range {
        from: side(from)?,
        to: side(to)?,
    })
}

/// The partitions of one sink's `activity_log`, as last read or made, shared by its clones.
#[derive(Debug)]
pub(super) struct Partitions {
    period: PartitionPeriod,
    /// How many periods after the current one are made ahead.
    ahead: u32,
    log: String,
    /// The schema prefix of partition names (`"s".` or empty) and the table's own name.
    qualifier: String,
    base: String,
    /// `None` until read from the catalog, and again after a write failed (another process's
    /// retention may have dropped a partition this one knew).
    known: Mutex<Option<Vec<Range>>>,
}

impl Partitions {
    pub(super) fn new(names: &TableNames, period: PartitionPeriod, ahead: u32) -> Arc<Self> {
        Arc::new(Partitions {
            period,
            ahead,
            log: names.log_table(),
            qualifier: names
                .schema()
                .map(|s| format!("\"{s}\"."))
                .unwrap_or_default(),
            base: format!("{}activity_log", names.prefix()),
            known: Mutex::new(None),
        })
    }

    /// Forgets what is known: the next write reads the catalog again.
    pub(super) fn forget(&self) {
        *self.known.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The days (as their midnights) among `times` and the periods ahead of `now` that no
    /// known partition holds; all of them when nothing is known yet.
    fn missing(
        &self,
        times: impl Iterator<Item = DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (bool, Vec<DateTime<Utc>>) {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wanted = Vec::new();
        let mut start = self.period.start(now.date_naive());
        let ahead = (0..=self.ahead).map(|_| {
            let at = midnight(start);
            start = self.period.next(start);
            at
        });
        for t in ahead.chain(times) {
            let covered = known
                .as_ref()
                .is_some_and(|k| k.iter().any(|r| r.contains(t)));
            if !covered {
                let day = midnight(t.date_naive());
                if !wanted.contains(&day) {
                    wanted.push(day);
                }
            }
        }
        (known.is_none(), wanted)
    }

    /// Makes sure a partition holds each of `times` and the periods ahead of now. Costs
    /// nothing when the known partitions already do; otherwise reads the catalog and creates
    /// what is missing, under an advisory lock so that processes starting together do not
    /// race.
    pub(super) async fn ensure(
        &self,
        pool: &PgPool,
        times: impl Iterator<Item = DateTime<Utc>>,
    ) -> Result<(), sqlx::Error> {
        let (unknown, wanted) = self.missing(times, Utc::now());
        if !unknown && wanted.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin(pool).await?;
        let mut ranges = self.read(&mut tx).await?;
        for day in wanted {
            if ranges.iter().any(|r| r.contains(day)) {
                continue;
            }
            let (start, next) = {
                let start = self.period.start(day.date_naive());
                (start, self.period.next(start))
            };
            let whole = Range {
                from: Some(midnight(start)),
                to: Some(midnight(next)),
            };
            let (range, suffix) = if ranges.iter().any(|r| r.overlaps(&whole)) {
                let d = day.date_naive();
                let next = PartitionPeriod::Day.next(d);
                let range = Range {
                    from: Some(day),
                    to: Some(midnight(next)),
                };
                (range, PartitionPeriod::Day.suffix(d))
            } else {
                (whole, self.period.suffix(start))
            };
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {}{}_{suffix} PARTITION OF {} \
                 FOR VALUES FROM ('{}') TO ('{}')",
                self.qualifier,
                self.base,
                self.log,
                range.from.unwrap_or_default().to_rfc3339(),
                range.to.unwrap_or_default().to_rfc3339(),
            );
            tx.execute(sqlx::raw_sql(&create)).await?;
            ranges.push(range);
        }
        tx.commit().await?;
        *self.known.lock().unwrap_or_else(PoisonError::into_inner) = Some(ranges);
        Ok(())
    }

    /// Opens a transaction holding the partition lock of this table, with the sink's
    /// timeouts and bounds printed in UTC.
    async fn begin(&self, pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = pool.begin_with(format!("BEGIN; {SET_TIMEOUTS}")).await?;
        lock(&mut tx, &self.log).await?;
        Ok(tx)
    }

    async fn read(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<Vec<Range>, sqlx::Error> {
        Ok(list(tx, &self.log)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }
}

/// Takes the partition lock of the table `log` for the transaction (creating and dropping
/// partitions wait for each other, across processes) and prints bounds in UTC.
async fn lock(tx: &mut Transaction<'static, Postgres>, log: &str) -> Result<(), sqlx::Error> {
    // Through `Executor` (a boxed future): rustc cannot prove `query(..).execute(&mut **tx)`'s
    // future `Send` for every lifetime, as `ActivitySink::write` asks.
    tx.execute(sqlx::raw_sql("SET LOCAL TimeZone = 'UTC'"))
        .await?;
    tx.execute(sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))").bind(log))
        .await?;
    Ok(())
}

/// The partitions of `log` and their ranges (needs `TimeZone = 'UTC'`, which [`lock`] sets).
pub(super) async fn list(
    tx: &mut Transaction<'static, Postgres>,
    log: &str,
) -> Result<Vec<(String, Range)>, sqlx::Error> {
    let rows = tx
        .fetch_all(
            sqlx::query(
                "SELECT format('%I.%I', n.nspname, c.relname), \
                 pg_get_expr(c.relpartbound, c.oid) \
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE i.inhparent = $1::regclass",
            )
            .bind(log),
        )
        .await?;
    let mut partitions = Vec::with_capacity(rows.len());
    for row in rows {
        let (name, bound): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(range) = parse_bound(&bound) {
            partitions.push((name, range));
        }
    }
    Ok(partitions)
}

/// Retention's fast part: drops every partition of the log that ends by `cutoff` (a UTC
/// midnight), in the caller's transaction, and returns how many records they held — read
/// from the rollup, which counts every stored record once per UTC day (partitions end on
/// UTC midnights), so nothing is scanned.
pub(super) async fn drop_before(
    tx: &mut Transaction<'static, Postgres>,
    names: &TableNames,
    cutoff: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let log = names.log_table();
    lock(tx, &log).await?;
    let count = format!(
        "SELECT coalesce(sum(requests), 0)::int8 FROM {} \
         WHERE day < $2::date AND ($1::date IS NULL OR day >= $1::date)",
        names.daily_table()
    );
    let mut dropped = 0u64;
    for (name, range) in list(tx, &log).await? {
        let Some(to) = range.to.filter(|&to| to <= cutoff) else {
            continue;
        };
        let query = sqlx::query(&count)
            .bind(range.from.map(|f| f.date_naive()))
            .bind(to.date_naive());
        let rows: i64 = tx.fetch_one(query).await?.try_get(0)?;
        tx.execute(sqlx::raw_sql(&format!("DROP TABLE {name}")))
            .await?;
        tracing::info!(partition = %name, records = rows, "activity retention dropped a partition");
        dropped += u64::try_from(rows).unwrap_or(0);
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn bounds_parse_as_postgres_prints_them_in_utc() {
        let r =
            parse_bound("FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')")
                .unwrap();
        assert_eq!(r.from, Some(at("2026-12-01T00:00:00Z")));
        assert_eq!(r.to, Some(at("2027-01-01T00:00:00Z")));
        assert!(r.contains(at("2026-12-31T23:59:59.999999Z")));
        assert!(!r.contains(at("2027-01-01T00:00:00Z")));
        let legacy =
            parse_bound("FOR VALUES FROM (MINVALUE) TO ('2026-12-01 00:00:00+00')").unwrap();
        assert_eq!(legacy.from, None);
        assert!(legacy.contains(at("1970-01-01T00:00:00Z")));
        assert!(!legacy.overlaps(&r));
        assert_eq!(parse_bound("DEFAULT"), None);
    }

    #[test]
    fn periods_start_on_utc_boundaries_and_name_their_partition() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 17).unwrap();
        let m = PartitionPeriod::Month.start(d);
        assert_eq!(m.to_string(), "2026-12-01");
        assert_eq!(PartitionPeriod::Month.next(m).to_string(), "2027-01-01");
        assert_eq!(PartitionPeriod::Month.suffix(m), "y2026m12");
        assert_eq!(PartitionPeriod::Day.suffix(d), "y2026m12d17");
        assert_eq!(PartitionPeriod::Day.next(d).to_string(), "2026-12-18");
    }

    #[test]
    fn only_days_no_known_partition_holds_are_wanted() {
        let p = Partitions::new(&TableNames::new(), PartitionPeriod::Month, 1);
        let now = at("2026-12-17T10:00:00Z");
        let (unknown, wanted) = p.missing([now].into_iter(), now);
        assert!(unknown);
        assert_eq!(
            wanted,
            [
                at("2026-12-01T00:00:00Z"),
                at("2027-01-01T00:00:00Z"),
                at("2026-12-17T00:00:00Z")
            ]
        );
        *p.known.lock().unwrap() = Some(vec![Range {
            from: Some(at("2026-12-01T00:00:00Z")),
            to: Some(at("2027-02-01T00:00:00Z")),
        }]);
        let old = at("2026-10-03T05:00:00Z");
        let (unknown, wanted) = p.missing([now, old, old].into_iter(), now);
        assert!(!unknown);
        assert_eq!(wanted, [at("2026-10-03T00:00:00Z")], "the old day, once");
    }
}
