//! [`Usage`] (what a request reserves or used) and [`Limits`] (the caps of one counter).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::window::Metric;

/// An amount of each metric: a request's reservation or settlement, or a counter's totals.
///
/// ```
/// use rust_decimal::Decimal;
/// use tower_activity::budget::{Metric, Usage};
///
/// let u = Usage { spend: Decimal::new(25, 4), tokens: 120, requests: 1 };
/// assert_eq!(u.get(Metric::Spend), Decimal::new(25, 4));
/// assert_eq!(u.get(Metric::Tokens), Decimal::from(120));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// US dollars, exact.
    pub spend: Decimal,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Requests.
    pub requests: u64,
}

/// Two amounts of spend added, saturating at `Decimal::MAX` (as every sum of usage here).
fn add_spend(a: Decimal, b: Decimal) -> Decimal {
    a.checked_add(b).unwrap_or(Decimal::MAX)
}

impl Usage {
    /// Nothing.
    pub const ZERO: Usage = Usage {
        spend: Decimal::ZERO,
        tokens: 0,
        requests: 0,
    };

    /// The amount of `metric`, as a decimal.
    pub fn get(&self, metric: Metric) -> Decimal {
        match metric {
            Metric::Spend => self.spend,
            Metric::Tokens => Decimal::from(self.tokens),
            Metric::Requests => Decimal::from(self.requests),
        }
    }

    /// `self + other`, each metric (saturating counts; money beyond `rust_decimal`'s range
    /// saturates at its maximum, far above any budget).
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            spend: add_spend(self.spend, other.spend),
            tokens: self.tokens.saturating_add(other.tokens),
            requests: self.requests.saturating_add(other.requests),
        }
    }

    /// `self - other`, each metric, never below zero.
    pub fn minus(&self, other: &Usage) -> Usage {
        Usage {
            spend: (self.spend - other.spend).max(Decimal::ZERO),
            tokens: self.tokens.saturating_sub(other.tokens),
            requests: self.requests.saturating_sub(other.requests),
        }
    }
}

/// The caps of one counter, per metric; `None` is no cap.
///
/// ```
/// use rust_decimal::Decimal;
/// use tower_activity::budget::{Limits, Metric};
///
/// let l = Limits::none().with(Metric::Requests, Some(Decimal::from(60)));
/// assert_eq!(l.get(Metric::Requests), Some(Decimal::from(60)));
/// assert_eq!(l.get(Metric::Spend), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// US dollars.
    pub spend: Option<Decimal>,
    /// Tokens (a whole number).
    pub tokens: Option<Decimal>,
    /// Requests (a whole number).
    pub requests: Option<Decimal>,
}

impl Limits {
    /// No caps.
    pub fn none() -> Self {
        Limits::default()
    }

    /// The cap on `metric`.
    pub fn get(&self, metric: Metric) -> Option<Decimal> {
        match metric {
            Metric::Spend => self.spend,
            Metric::Tokens => self.tokens,
            Metric::Requests => self.requests,
        }
    }

    /// The same limits with the cap on `metric` set to `max`.
    pub fn with(mut self, metric: Metric, max: Option<Decimal>) -> Self {
        *self.slot(metric) = max;
        self
    }

    /// Whether no metric is capped.
    pub fn is_empty(&self) -> bool {
        Metric::ALL.iter().all(|m| self.get(*m).is_none())
    }

    /// Each cap of `overrides`, else this one's.
    pub fn overridden_by(&self, overrides: &Limits) -> Limits {
        Limits {
            spend: overrides.spend.or(self.spend),
            tokens: overrides.tokens.or(self.tokens),
            requests: overrides.requests.or(self.requests),
        }
    }

    /// Whether `used + reserved + estimate` stays within every cap.
    pub fn admit(&self, used: &Usage, reserved: &Usage, estimate: &Usage) -> bool {
        self.exceeded(used, reserved, estimate).is_none()
    }

    /// The first metric (in [`Metric::ALL`]'s order) whose cap `used + reserved + estimate`
    /// would pass. Only the capped metrics are summed (as [`Usage::plus`] sums them).
    pub fn exceeded(&self, used: &Usage, reserved: &Usage, estimate: &Usage) -> Option<Metric> {
        if let Some(max) = self.spend {
            if add_spend(add_spend(used.spend, reserved.spend), estimate.spend) > max {
                return Some(Metric::Spend);
            }
        }
        let count = |u: fn(&Usage) -> u64| {
            Decimal::from(
                u(used)
                    .saturating_add(u(reserved))
                    .saturating_add(u(estimate)),
            )
        };
        if self.tokens.is_some_and(|max| count(|u| u.tokens) > max) {
            return Some(Metric::Tokens);
        }
        if self.requests.is_some_and(|max| count(|u| u.requests) > max) {
            return Some(Metric::Requests);
        }
        None
    }

    fn slot(&mut self, metric: Metric) -> &mut Option<Decimal> {
        match metric {
            Metric::Spend => &mut self.spend,
            Metric::Tokens => &mut self.tokens,
            Metric::Requests => &mut self.requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_is_inclusive_of_the_cap() {
        let limits = Limits::none().with(Metric::Spend, Some(Decimal::new(10, 2)));
        let used = Usage {
            spend: Decimal::new(7, 2),
            ..Usage::ZERO
        };
        let reserved = Usage {
            spend: Decimal::new(2, 2),
            ..Usage::ZERO
        };
        let fits = Usage {
            spend: Decimal::new(1, 2),
            ..Usage::ZERO
        };
        assert!(limits.admit(&used, &reserved, &fits));
        let over = Usage {
            spend: Decimal::new(11, 3),
            ..Usage::ZERO
        };
        assert_eq!(
            limits.exceeded(&used, &reserved, &over),
            Some(Metric::Spend)
        );
        assert!(Limits::none().admit(&used, &reserved, &over));
    }

    #[test]
    fn exceeded_sums_only_the_capped_metrics_as_plus_would() {
        let usages = [
            Usage::ZERO,
            Usage {
                spend: Decimal::new(7, 2),
                tokens: 40,
                requests: 1,
            },
            Usage {
                spend: Decimal::MAX,
                tokens: u64::MAX,
                requests: u64::MAX - 1,
            },
            Usage {
                spend: Decimal::new(3, 1),
                tokens: 60,
                requests: 2,
            },
        ];
        let caps = [
            None,
            Some(Decimal::ZERO),
            Some(Decimal::new(1, 1)),
            Some(Decimal::from(100)),
            Some(Decimal::MAX),
        ];
        // The rule as first written: every metric summed, then compared.
        let reference = |l: &Limits, a: &Usage, b: &Usage, c: &Usage| {
            let total = a.plus(b).plus(c);
            Metric::ALL
                .into_iter()
                .find(|m| l.get(*m).is_some_and(|max| total.get(*m) > max))
        };
        for spend in caps {
            for tokens in caps {
                for requests in caps {
                    let limits = Limits {
                        spend,
                        tokens,
                        requests,
                    };
                    for a in &usages {
                        for b in &usages {
                            for c in &usages {
                                assert_eq!(
                                    limits.exceeded(a, b, c),
                                    reference(&limits, a, b, c),
                                    "{limits:?} {a:?} {b:?} {c:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn overrides_replace_defaults_per_metric() {
        let defaults = Limits::none()
            .with(Metric::Spend, Some(Decimal::ONE))
            .with(Metric::Requests, Some(Decimal::from(5)));
        let stored = Limits::none().with(Metric::Spend, Some(Decimal::TEN));
        let eff = defaults.overridden_by(&stored);
        assert_eq!(eff.spend, Some(Decimal::TEN));
        assert_eq!(eff.requests, Some(Decimal::from(5)));
        assert_eq!(
            Usage::ZERO.minus(&Usage {
                tokens: 3,
                ..Usage::ZERO
            }),
            Usage::ZERO
        );
    }
}
