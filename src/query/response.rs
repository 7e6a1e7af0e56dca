//! [`Stats`] and [`LogPage`]: the answers of the activity API, one shape for every store.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::record::ActivityRecord;

/// The name a breakdown uses for records without a model or provider.
pub(crate) const UNKNOWN: &str = "unknown";

/// Decimal places of the averages (costs per token are tiny: `0.000000125`).
const AVERAGE_DP: u32 = 18;

/// One user's activity over a range of whole UTC days.
///
/// Money is an exact decimal serialised as a JSON string, like
/// [`ActivityRecord::cost_usd`]. `tokens` everywhere is `input_tokens + output_tokens` with
/// unknown counts taken as 0 (so a request cut short still counts its known input); a record
/// without a cost adds 0 to the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// First day of the range (UTC, included).
    pub from: NaiveDate,
    /// Last day of the range (UTC, included).
    pub to: NaiveDate,
    /// Requests in the range (application events too when the query asked for them).
    pub total_requests: u64,
    /// Tokens in the range.
    pub total_tokens: u64,
    /// Money spent in the range, in US dollars.
    pub total_spend: Decimal,
    /// The same as `total_spend`, under the other name the original API used.
    pub total_cost: Decimal,
    /// `total_spend / total_requests` (0 without requests), 18 decimal places at most.
    pub avg_cost_per_request: Decimal,
    /// `total_spend / total_tokens` (0 without tokens), 18 decimal places at most.
    pub avg_cost_per_token: Decimal,
    /// `total_tokens / total_requests` (0 without requests), 18 decimal places at most.
    pub avg_tokens_per_request: Decimal,
    /// One entry per day of the range, oldest first, days without activity included.
    pub daily_stats: Vec<DailyStat>,
    /// Per model (`"unknown"` for records without one).
    pub by_model: BTreeMap<String, Breakdown>,
    /// Per provider (`"unknown"` for records without one).
    pub by_provider: BTreeMap<String, Breakdown>,
}

/// One day of [`Stats::daily_stats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyStat {
    /// The UTC day.
    pub date: NaiveDate,
    /// Money spent that day.
    pub spend: Decimal,
    /// Tokens that day.
    pub tokens: u64,
    /// Requests that day.
    pub requests: u64,
}

/// One entry of [`Stats::by_model`] or [`Stats::by_provider`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Requests.
    pub requests: u64,
    /// Tokens.
    pub tokens: u64,
    /// Money spent.
    pub cost: Decimal,
}

impl Breakdown {
    fn add(&mut self, requests: u64, tokens: u64, cost: Decimal) {
        self.requests += requests;
        self.tokens += tokens;
        self.cost += cost;
    }
}

/// Builds a [`Stats`] from grouped sums — what a store's `GROUP BY day, model, provider`
/// returns — so that every store derives the totals, averages and series the same way.
///
/// ```
/// use rust_decimal::Decimal;
/// use tower_activity::query::StatsBuilder;
///
/// let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
/// let mut b = StatsBuilder::new(day, day);
/// b.add(day, Some("gpt-4o"), Some("OpenAI"), 2, 300, Decimal::new(45, 4));
/// let stats = b.finish();
/// assert_eq!(stats.avg_cost_per_request.to_string(), "0.00225");
/// ```
#[derive(Debug, Clone)]
pub struct StatsBuilder {
    from: NaiveDate,
    to: NaiveDate,
    days: BTreeMap<NaiveDate, Breakdown>,
    by_model: BTreeMap<String, Breakdown>,
    by_provider: BTreeMap<String, Breakdown>,
}

impl StatsBuilder {
    /// An empty range from `from` to `to`, both included.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        StatsBuilder {
            from,
            to,
            days: BTreeMap::new(),
            by_model: BTreeMap::new(),
            by_provider: BTreeMap::new(),
        }
    }

    /// Adds one group's sums; a `day` outside the range is ignored.
    pub fn add(
        &mut self,
        day: NaiveDate,
        model: Option<&str>,
        provider: Option<&str>,
        requests: u64,
        tokens: u64,
        cost: Decimal,
    ) {
        if day < self.from || day > self.to {
            return;
        }
        self.days
            .entry(day)
            .or_default()
            .add(requests, tokens, cost);
        for (map, key) in [
            (&mut self.by_model, model),
            (&mut self.by_provider, provider),
        ] {
            map.entry(key.unwrap_or(UNKNOWN).to_owned())
                .or_default()
                .add(requests, tokens, cost);
        }
    }

    /// Adds one record as one request (the caller filters by user, kind and range).
    pub fn add_record(&mut self, record: &ActivityRecord) {
        self.add(
            record.timestamp.date_naive(),
            record.model.as_deref(),
            record.provider.as_deref(),
            1,
            record_tokens(record),
            record.cost_usd.unwrap_or_default(),
        );
    }

    /// The totals, averages and the daily series with every day of the range.
    pub fn finish(self) -> Stats {
        let mut total = Breakdown::default();
        for day in self.days.values() {
            total.add(day.requests, day.tokens, day.cost);
        }
        let mut daily_stats = Vec::new();
        let mut day = self.from;
        while day <= self.to {
            let sums = self.days.get(&day).cloned().unwrap_or_default();
            daily_stats.push(DailyStat {
                date: day,
                spend: sums.cost.normalize(),
                tokens: sums.tokens,
                requests: sums.requests,
            });
            match day.checked_add_days(Days::new(1)) {
                Some(next) => day = next,
                None => break,
            }
        }
        let spend = total.cost.normalize();
        let normalise = |mut map: BTreeMap<String, Breakdown>| {
            map.values_mut().for_each(|b| b.cost = b.cost.normalize());
            map
        };
        Stats {
            from: self.from,
            to: self.to,
            total_requests: total.requests,
            total_tokens: total.tokens,
            total_spend: spend,
            total_cost: spend,
            avg_cost_per_request: average(spend, total.requests),
            avg_cost_per_token: average(spend, total.tokens),
            avg_tokens_per_request: average(Decimal::from(total.tokens), total.requests),
            daily_stats,
            by_model: normalise(self.by_model),
            by_provider: normalise(self.by_provider),
        }
    }
}

/// The tokens a record adds to stats: input + output, unknown counts as 0.
pub(crate) fn record_tokens(record: &ActivityRecord) -> u64 {
    record.input_tokens.unwrap_or(0) + record.output_tokens.unwrap_or(0)
}

fn average(sum: Decimal, count: u64) -> Decimal {
    if count == 0 {
        return Decimal::ZERO;
    }
    sum.checked_div(Decimal::from(count))
        .unwrap_or_default()
        .round_dp(AVERAGE_DP)
        .normalize()
}

/// One page of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    /// The rows, newest first.
    pub logs: Vec<ActivityRecord>,
    /// How many rows match the filters in all (not just this page).
    pub total: u64,
    /// The 1-based page number; `null` for a cursor page.
    pub page: Option<u64>,
    /// The page size asked for.
    pub limit: u32,
    /// Whether rows follow this page.
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; present when `has_more`.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn every_day_of_the_range_is_in_the_series_and_totals_add_up() {
        let mut b = StatsBuilder::new(day("2026-11-23"), day("2026-11-25"));
        b.add(
            day("2026-11-23"),
            Some("m"),
            None,
            1,
            10,
            Decimal::new(1, 6),
        );
        b.add(day("2026-11-25"), None, Some("P"), 2, 5, Decimal::new(2, 6));
        b.add(day("2026-11-26"), None, None, 9, 9, Decimal::ONE);
        let s = b.finish();
        assert_eq!(s.daily_stats.len(), 3);
        assert_eq!(s.daily_stats[1].requests, 0);
        assert_eq!((s.total_requests, s.total_tokens), (3, 15));
        assert_eq!(s.total_spend.to_string(), "0.000003");
        assert_eq!(s.total_cost, s.total_spend);
        assert_eq!(s.avg_cost_per_request.to_string(), "0.000001");
        assert_eq!(s.avg_cost_per_token.to_string(), "0.0000002");
        assert_eq!(s.avg_tokens_per_request.to_string(), "5");
        assert_eq!(s.by_model["unknown"].requests, 2);
        assert_eq!(s.by_provider["P"].tokens, 5);
    }

    #[test]
    fn an_empty_range_has_zero_averages() {
        let s = StatsBuilder::new(day("2026-11-25"), day("2026-11-25")).finish();
        assert_eq!(s.avg_cost_per_request, Decimal::ZERO);
        assert_eq!(s.avg_cost_per_token, Decimal::ZERO);
        assert_eq!(serde_json::to_value(&s).unwrap()["total_spend"], "0");
    }
}
