//! The bulk path's rollup: a batch's `activity_daily` rows added up here, while its `COPY`
//! rows are encoded, and sent as one small upsert (a row per user, day, kind, model and
//! provider — hundreds, not thousands) instead of PostgreSQL grouping the inserted rows.
//!
//! Only valid for a batch whose every record was inserted (the `COPY` into the log succeeded
//! with no duplicate), and only while every sum is exact: a token sum beyond `BIGINT` or a
//! cost sum a [`Decimal`] cannot hold without rounding makes the rollup [inexact](Rollup::is_exact),
//! and the sink then writes the batch through the `UNNEST` statement, which adds up in
//! `NUMERIC` (and fails as it always did when a sum does not fit).

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::postgres::PgQueryResult;

use crate::sink::sql::EncodedRecord;

/// The `INSERT … ON CONFLICT DO UPDATE` into `daily` of the rows `select` yields (columns
/// `user_id, day, kind, model, provider, requests, input_tokens, output_tokens, total_tokens,
/// cost_usd`, ordered by the key so that concurrent writers lock rollup rows in one order).
pub(super) fn upsert_daily(daily: &str, select: &str) -> String {
    format!(
        "INSERT INTO {daily} AS d (user_id, day, kind, model, provider, requests, \
                                   input_tokens, output_tokens, total_tokens, cost_usd) \
         {select} \
         ON CONFLICT (user_id, day, kind, model, provider) DO UPDATE SET \
           requests = d.requests + EXCLUDED.requests, \
           input_tokens = d.input_tokens + EXCLUDED.input_tokens, \
           output_tokens = d.output_tokens + EXCLUDED.output_tokens, \
           total_tokens = d.total_tokens + EXCLUDED.total_tokens, \
           cost_usd = d.cost_usd + EXCLUDED.cost_usd"
    )
}

/// The upsert of a [`Rollup`]: its rows as one array per column.
pub(super) fn statement(daily: &str) -> String {
    upsert_daily(
        daily,
        "SELECT user_id, day, kind, model, provider, requests, input_tokens, output_tokens, \
                total_tokens, cost_usd::numeric \
         FROM UNNEST($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::int8[], \
                     $7::int8[], $8::int8[], $9::int8[], $10::text[]) \
           AS r(user_id, day, kind, model, provider, requests, input_tokens, output_tokens, \
                total_tokens, cost_usd) \
         ORDER BY 1, 2, 3, 4, 5",
    )
}

/// A rollup row's key: user, UTC day, kind, model, provider (as stored: NUL characters
/// replaced).
type Key<'a> = (
    Option<Cow<'a, str>>,
    NaiveDate,
    &'static str,
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
);

/// A rollup row's sums, as the `UNNEST` statement computes them: unknown tokens count as 0,
/// total = input + output, no cost adds nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sums {
    requests: i64,
    input: i64,
    output: i64,
    total: i64,
    cost: Decimal,
}

/// `a + b` if a [`Decimal`] holds it exactly: the sum keeps the larger scale (rust_decimal
/// rounds to a smaller scale when the digits do not fit) and does not overflow.
fn exact_sum(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_add(b)
        .filter(|sum| sum.scale() == a.scale().max(b.scale()))
}

impl Sums {
    fn add(&mut self, input: i64, output: i64, cost: Option<Decimal>) -> Option<()> {
        self.requests = self.requests.checked_add(1)?;
        self.input = self.input.checked_add(input)?;
        self.output = self.output.checked_add(output)?;
        self.total = self.total.checked_add(input.checked_add(output)?)?;
        if let Some(cost) = cost {
            self.cost = exact_sum(self.cost, cost)?;
        }
        Some(())
    }
}

/// The rollup rows of a batch, added up record by record.
#[derive(Debug)]
pub(super) struct Rollup<'a> {
    groups: HashMap<Key<'a>, Sums>,
    exact: bool,
}

impl<'a> Rollup<'a> {
    pub(super) fn new() -> Self {
        Rollup {
            groups: HashMap::with_capacity(64),
            exact: true,
        }
    }

    /// Adds one record (`cost` is its `cost_usd`, which `e` holds as text).
    pub(super) fn add(&mut self, e: &EncodedRecord<'a>, cost: Option<Decimal>) {
        let key = (
            e.user_id.clone(),
            e.timestamp.date_naive(),
            e.kind,
            e.model.clone(),
            e.provider.clone(),
        );
        let [input, output, ..] = e.tokens;
        let added =
            self.groups
                .entry(key)
                .or_default()
                .add(input.unwrap_or(0), output.unwrap_or(0), cost);
        self.exact &= added.is_some();
    }

    /// Whether every sum is exact (see the module's docs).
    pub(super) fn is_exact(&self) -> bool {
        self.exact
    }

    /// Adds the rows to the table of `statement` ([`statement`]) on `conn`.
    pub(super) async fn upsert(
        self,
        conn: &mut PgConnection,
        statement: &str,
    ) -> Result<PgQueryResult, sqlx::Error> {
        let n = self.groups.len();
        let (mut user, mut day, mut kind, mut model, mut provider) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut sums: [Vec<i64>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut cost = Vec::with_capacity(n);
        for ((u, d, k, m, p), s) in self.groups {
            user.push(u);
            day.push(d);
            kind.push(k);
            model.push(m);
            provider.push(p);
            for (column, value) in sums
                .iter_mut()
                .zip([s.requests, s.input, s.output, s.total])
            {
                column.push(value);
            }
            cost.push(s.cost.to_string());
        }
        let [requests, input, output, total] = sums;
        sqlx::query(statement)
            .bind(user)
            .bind(day)
            .bind(kind)
            .bind(model)
            .bind(provider)
            .bind(requests)
            .bind(input)
            .bind(output)
            .bind(total)
            .bind(cost)
            .execute(conn)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivityRecord, RecordKind};
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn sums_are_exact_or_refused() {
        assert_eq!(
            exact_sum(dec("0"), dec("0.000000007")),
            Some(dec("0.000000007"))
        );
        assert_eq!(
            exact_sum(dec("1.5"), dec("0.25")).unwrap().to_string(),
            "1.75"
        );
        assert_eq!(
            exact_sum(dec("1.50"), dec("1")).unwrap().to_string(),
            "2.50"
        );
        // 28 digits before the point and one after, plus a hundredth: 31 digits.
        let big = dec("7922816251426433759354395033.5");
        assert_eq!(exact_sum(big, dec("0.05")), None, "would round");
        assert_eq!(exact_sum(Decimal::MAX, Decimal::ONE), None, "overflows");
    }

    #[test]
    fn records_group_by_user_day_kind_model_and_provider() {
        let mut a = ActivityRecord::new(RecordKind::Request);
        a.user_id = Some("u".into());
        a.model = Some("m".into());
        a.input_tokens = Some(10);
        a.cost_usd = Some(dec("0.10"));
        let mut b = a.clone();
        b.output_tokens = Some(5);
        b.cost_usd = None;
        let mut c = a.clone();
        c.model = None;
        let mut huge = a.clone();
        huge.input_tokens = Some(i64::MAX as u64);
        let encoded: Vec<_> = [&a, &b, &c]
            .iter()
            .map(|r| EncodedRecord::new(r).unwrap())
            .collect();
        let mut rollup = Rollup::new();
        for (e, r) in encoded.iter().zip([&a, &b, &c]) {
            rollup.add(e, r.cost_usd);
        }
        assert!(rollup.is_exact());
        assert_eq!(rollup.groups.len(), 2);
        let key = (
            Some(Cow::Borrowed("u")),
            a.timestamp.date_naive(),
            "request",
            Some(Cow::Borrowed("m")),
            None,
        );
        assert_eq!(
            rollup.groups[&key],
            Sums {
                requests: 2,
                input: 20,
                output: 5,
                total: 25,
                cost: dec("0.10"),
            }
        );
        let e = EncodedRecord::new(&huge).unwrap();
        rollup.add(&e, None);
        assert!(!rollup.is_exact(), "a token sum beyond BIGINT");
    }
}
