//! The series a record counts into, found once per route and per model rather than per
//! record.
//!
//! Finding a series in a [`Family`](prometheus_client::metrics::family::Family) builds its
//! label set (owned strings), hashes it and takes the family's lock; a record counts into up
//! to nine of them, and the label caps ([`Bounded`](super::records)) take a lock and hash
//! too. A gateway's records name a handful of routes and models, so [`Series`] keeps the
//! handles of the last few (a counter or histogram handle is the series itself, shared) and
//! compares a record's route, outcome, model and provider with them. A series is still created
//! only when a record first counts into it, so the scrape shows what it showed before.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

/// How many routes (and models) keep their handles; past that the oldest is replaced.
const KEPT: usize = 16;

/// The token types, in the order of [`ModelSeries::tokens`].
pub(super) const TOKEN_TYPES: [&str; 5] =
    ["input", "output", "cache_read", "cache_write", "reasoning"];

/// The handles of one route and outcome.
#[derive(Debug)]
pub(super) struct RouteSeries<L> {
    endpoint: String,
    outcome: &'static str,
    /// The label set (the route as capped).
    pub(super) labels: L,
    pub(super) requests: Counter,
    /// Created when a record with a latency first counts into it.
    pub(super) duration: Option<Histogram>,
}

/// The handles of one model and provider.
#[derive(Debug)]
pub(super) struct ModelSeries<L> {
    model: Option<String>,
    provider: Option<String>,
    /// The label set (model and provider as capped).
    pub(super) labels: L,
    pub(super) requests: Counter,
    /// Created when first needed, as in the families.
    pub(super) ttft: Option<Histogram>,
    pub(super) tokens: [Option<Counter>; 5],
}

/// The kept handles (see the module docs).
#[derive(Debug)]
pub(super) struct Series<R, M> {
    routes: Vec<RouteSeries<R>>,
    models: Vec<ModelSeries<M>>,
    /// The next slot to replace when full.
    next_route: usize,
    next_model: usize,
}

impl<R, M> Default for Series<R, M> {
    fn default() -> Self {
        Series {
            routes: Vec::new(),
            models: Vec::new(),
            next_route: 0,
            next_model: 0,
        }
    }
}

/// Puts `entry` in `kept`, replacing the slot `next` points to when full; its index.
fn keep<T>(kept: &mut Vec<T>, next: &mut usize, entry: T) -> usize {
    if kept.len() < KEPT {
        kept.push(entry);
        return kept.len() - 1;
    }
    let at = *next;
    kept[at] = entry;
    *next = (at + 1) % KEPT;
    at
}

impl<R, M> Series<R, M> {
    /// The handles of `endpoint` and `outcome`; `make` gives the label set and request
    /// counter of one not kept.
    pub(super) fn route(
        &mut self,
        endpoint: &str,
        outcome: &'static str,
        make: impl FnOnce() -> (R, Counter),
    ) -> &mut RouteSeries<R> {
        let found = self
            .routes
            .iter()
            .position(|s| s.outcome == outcome && s.endpoint == endpoint);
        let at = match found {
            Some(at) => at,
            None => {
                let (labels, requests) = make();
                let entry = RouteSeries {
                    endpoint: endpoint.to_owned(),
                    outcome,
                    labels,
                    requests,
                    duration: None,
                };
                keep(&mut self.routes, &mut self.next_route, entry)
            }
        };
        &mut self.routes[at]
    }

    /// The handles of `model` and `provider`; `make` gives the label set and request counter
    /// of one not kept.
    pub(super) fn model(
        &mut self,
        model: Option<&str>,
        provider: Option<&str>,
        make: impl FnOnce() -> (M, Counter),
    ) -> &mut ModelSeries<M> {
        let found = self
            .models
            .iter()
            .position(|s| s.model.as_deref() == model && s.provider.as_deref() == provider);
        let at = match found {
            Some(at) => at,
            None => {
                let (labels, requests) = make();
                let entry = ModelSeries {
                    model: model.map(str::to_owned),
                    provider: provider.map(str::to_owned),
                    labels,
                    requests,
                    ttft: None,
                    tokens: Default::default(),
                };
                keep(&mut self.models, &mut self.next_model, entry)
            }
        };
        &mut self.models[at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_route_is_found_and_past_the_limit_the_oldest_goes() {
        let mut s: Series<String, ()> = Series::default();
        let made = std::cell::Cell::new(0);
        let get = |s: &mut Series<String, ()>, e: &str, o: &'static str| {
            s.route(e, o, || {
                made.set(made.get() + 1);
                (format!("{e} {o}"), Counter::default())
            })
            .requests
            .inc();
        };
        get(&mut s, "/a", "ok");
        get(&mut s, "/a", "ok");
        get(&mut s, "/a", "error");
        assert_eq!(made.get(), 2, "one entry per route and outcome");
        for i in 0..KEPT {
            get(&mut s, &format!("/{i}"), "ok");
        }
        assert_eq!(s.routes.len(), KEPT);
        let made_before = made.get();
        get(&mut s, "/a", "ok");
        assert_eq!(made.get(), made_before + 1, "replaced, so made again");
        get(&mut s, &format!("/{}", KEPT - 1), "ok");
        assert_eq!(made.get(), made_before + 1, "still kept");
    }

    #[test]
    fn models_are_told_apart_by_model_and_provider_unknown_included() {
        let mut s: Series<(), u32> = Series::default();
        let mut n = 0;
        for (m, p) in [
            (Some("m"), Some("p")),
            (Some("m"), None),
            (None, Some("p")),
            (None, None),
            (Some("m"), Some("p")),
        ] {
            s.model(m, p, || {
                n += 1;
                (n, Counter::default())
            })
            .requests
            .inc();
        }
        assert_eq!(n, 4);
        assert_eq!(s.models[0].requests.get(), 2);
        assert_eq!(s.models[0].labels, 1);
    }
}
