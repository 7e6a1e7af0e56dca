//! What a client is told: `x-ratelimit-*` headers on every answer, and a refusal in the
//! API's own error shape — `429` with `retry-after` when a window is exhausted, `402`
//! `insufficient_credits` when a balance ([`Window::Total`]) is.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use rust_decimal::Decimal;
use serde_json::json;

use crate::record::LlmApi;

use super::store::{Check, CounterState};
use super::window::{Metric, Window};

/// The cap a refused request did not fit under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) state: CounterState,
    pub(super) metric: Metric,
    pub(super) max: Decimal,
    pub(super) needed: Decimal,
    /// When the window resets (`None`: a balance, which only a top-up raises).
    pub(super) reset: Option<DateTime<Utc>>,
}

impl Refusal {
    /// The cap to report among those the request did not fit: a balance first (waiting does
    /// not help), else the window that resets last (the request fits no earlier).
    pub(super) fn find(checks: &[Check], states: &[CounterState]) -> Option<Refusal> {
        let mut found: Vec<Refusal> = checks
            .iter()
            .zip(states)
            .filter_map(|(check, state)| {
                let metric =
                    state
                        .limits
                        .exceeded(&state.used, &state.reserved, &check.estimate)?;
                Some(Refusal {
                    state: state.clone(),
                    metric,
                    max: state.limits.get(metric)?,
                    needed: check.estimate.get(metric),
                    reset: state.counter.end(),
                })
            })
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.reset.unwrap_or(DateTime::<Utc>::MAX_UTC)));
        found.into_iter().next()
    }

    /// `402` for a balance, `429` for a window.
    pub(super) fn status(&self) -> StatusCode {
        if self.state.counter.window == Window::Total {
            StatusCode::PAYMENT_REQUIRED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        }
    }

    /// The OpenAI `code`: `insufficient_credits`, or `{metric}_limit_{window}`.
    pub(super) fn code(&self) -> String {
        if self.status() == StatusCode::PAYMENT_REQUIRED {
            "insufficient_credits".to_owned()
        } else {
            format!("{}_limit_{}", self.metric, self.state.counter.window)
        }
    }

    /// A sentence a person can act on.
    pub(super) fn message(&self) -> String {
        let s = &self.state;
        let amount = |d: Decimal| show(self.metric, d);
        let taken = format!(
            "{} used, {} reserved by requests in flight",
            amount(s.used.get(self.metric)),
            amount(s.reserved.get(self.metric))
        );
        match self.reset {
            None => format!(
                "Insufficient credits for {}: the {} balance of {} is exhausted ({taken}); \
                 this request needs up to {}. Add credits to continue.",
                s.counter.subject,
                self.metric,
                amount(self.max),
                amount(self.needed),
            ),
            Some(reset) => format!(
                "Budget exceeded for {}: the {} limit of {} per {} is reached ({taken}); \
                 this request needs up to {}. The window resets at {}.",
                s.counter.subject,
                self.metric,
                amount(self.max),
                s.counter.window,
                amount(self.needed),
                reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        }
    }

    /// Seconds until the window resets (at least 1).
    pub(super) fn retry_after(&self, now: DateTime<Utc>) -> Option<u64> {
        let reset = self.reset?;
        let ms = (reset - now).num_milliseconds().max(1) as u64;
        Some(ms.div_ceil(1000))
    }

    /// The refusal in `api`'s error shape, with `headers` (the `x-ratelimit-*` set).
    pub(super) fn response(
        &self,
        api: LlmApi,
        now: DateTime<Utc>,
        headers: HeaderMap,
    ) -> Response<Bytes> {
        let status = self.status();
        let credits = status == StatusCode::PAYMENT_REQUIRED;
        let message = self.message();
        let body = match api {
            LlmApi::AnthropicMessages => json!({
                "type": "error",
                "error": {
                    "type": if credits { "insufficient_credits" } else { "rate_limit_error" },
                    "message": message,
                },
            }),
            LlmApi::GeminiGenerate => json!({
                "error": {
                    "code": status.as_u16(),
                    "status": "RESOURCE_EXHAUSTED",
                    "message": message,
                    "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": if credits { "INSUFFICIENT_CREDITS" } else { "BUDGET_EXCEEDED" },
                        "domain": "tower-activity",
                        "metadata": { "limit": self.code() },
                    }],
                },
            }),
            _ => json!({
                "error": {
                    "message": message,
                    "type": if credits { "insufficient_credits" } else { "budget_exceeded" },
                    "param": null,
                    "code": self.code(),
                },
            }),
        };
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after(now).filter(|_| !credits) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A quantity for people: `$0.0296` for money, a plain number otherwise.
fn show(metric: Metric, d: Decimal) -> String {
    match metric {
        Metric::Spend => format!("${}", d.normalize()),
        _ => d.normalize().to_string(),
    }
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: for each of the two metrics, the
/// capped counter with the least left (after this request's reservation when it was admitted).
pub(super) fn rate_headers(states: &[CounterState], now: DateTime<Utc>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in rate_header_list(states, now).into_iter().flatten() {
        headers.insert(name, value);
    }
    headers
}

/// The headers of [`rate_headers`], each name at most once, as a list to insert into a
/// response's own map (no map of their own to build, hash and drop).
pub(super) type RateHeaders = [Option<(HeaderName, HeaderValue)>; 6];

/// The headers' names for `metric`, made at compile time (`from_static` checks a name at run
/// time otherwise).
fn names(metric: Metric) -> [HeaderName; 3] {
    match metric {
        Metric::Requests => [
            const { HeaderName::from_static("x-ratelimit-limit-requests") },
            const { HeaderName::from_static("x-ratelimit-remaining-requests") },
            const { HeaderName::from_static("x-ratelimit-reset-requests") },
        ],
        _ => [
            const { HeaderName::from_static("x-ratelimit-limit-tokens") },
            const { HeaderName::from_static("x-ratelimit-remaining-tokens") },
            const { HeaderName::from_static("x-ratelimit-reset-tokens") },
        ],
    }
}

/// [`rate_headers`] as a list.
pub(super) fn rate_header_list(states: &[CounterState], now: DateTime<Utc>) -> RateHeaders {
    let mut out: RateHeaders = Default::default();
    for (i, metric) in [Metric::Requests, Metric::Tokens].into_iter().enumerate() {
        let tightest = states
            .iter()
            .filter_map(|s| Some((s.remaining(metric)?, s)))
            .min_by_key(|(left, _)| *left);
        let Some((left, state)) = tightest else {
            continue;
        };
        let [limit, remaining, reset] = names(metric);
        if let (Some(max), Some(left)) = (state.limits.get(metric).and_then(whole), whole(left)) {
            out[3 * i] = Some((limit, max));
            out[3 * i + 1] = Some((remaining, left));
        }
        if let Some(end) = state.counter.end() {
            out[3 * i + 2] = Some((reset, duration_value(end - now)));
        }
    }
    out
}

/// A cap or what is left of it, truncated to a whole number, as a header value: a
/// non-negative count written by `itoa` (one allocation, no decimal formatting), anything
/// else as its decimal text (the same digits).
fn whole(d: Decimal) -> Option<HeaderValue> {
    let d = d.trunc();
    match u64::try_from(d.mantissa()) {
        // `trunc` leaves scale 0: the mantissa is the value.
        Ok(n) if d.is_sign_positive() && d.scale() == 0 => Some(HeaderValue::from(n)),
        _ => HeaderValue::from_str(&d.to_string()).ok(),
    }
}

/// A duration as OpenAI writes its resets (Go's format): `250ms`, `59s`, `6m0s`, `23h59m59s`.
pub(super) fn duration(d: chrono::TimeDelta) -> String {
    let mut out = String::new();
    write_duration(&mut out, d).expect("a String takes any text");
    out
}

/// [`duration`] as a header value, written into a buffer on the stack (no `String`).
fn duration_value(d: chrono::TimeDelta) -> HeaderValue {
    let mut buf = StackText::default();
    match write_duration(&mut buf, d) {
        // Digits and letters only: always a valid header value.
        Ok(()) => HeaderValue::from_bytes(buf.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static("0s")),
        Err(_) => {
            HeaderValue::from_str(&duration(d)).unwrap_or_else(|_| HeaderValue::from_static("0s"))
        }
    }
}

fn write_duration(out: &mut impl std::fmt::Write, d: chrono::TimeDelta) -> std::fmt::Result {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        return write!(out, "{ms}ms");
    }
    let s = (ms as u64).div_ceil(1000);
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => write!(out, "{s}s"),
        (0, _) => write!(out, "{m}m{s}s"),
        _ => write!(out, "{h}h{m}m{s}s"),
    }
}

/// Up to 32 bytes of text on the stack (the longest duration, `u64::MAX` seconds in hours,
/// minutes and seconds, is 24).
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::store::CounterKey;
    use crate::budget::usage::{Limits, Usage};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn state(window: Window, limits: Limits, used: Usage) -> CounterState {
        CounterState {
            counter: CounterKey::at("user:u", window, at("2026-03-01T10:00:00Z")),
            used,
            reserved: Usage::ZERO,
            limits,
        }
    }

    #[test]
    fn durations_read_like_openais() {
        let d = chrono::TimeDelta::milliseconds;
        assert_eq!(duration(d(250)), "250ms");
        assert_eq!(duration(d(59_001)), "1m0s");
        assert_eq!(duration(d(360_000)), "6m0s");
        assert_eq!(duration(d(86_399_000)), "23h59m59s");
        for ms in [-5, 0, 999, 1000, 59_001, 86_399_000, i64::MAX / 1000 * 1000] {
            assert_eq!(duration_value(d(ms)), duration(d(ms)).as_str(), "{ms} ms");
        }
    }

    #[test]
    fn whole_numbers_read_as_their_decimal_text() {
        for d in [
            Decimal::ZERO,
            Decimal::from(60),
            Decimal::new(600, 1),
            Decimal::new(12345, 2),
            Decimal::from(i64::MAX),
            Decimal::from(u64::MAX),
            Decimal::MAX,
            Decimal::new(-15, 1),
            Decimal::from_parts(0, 0, 0, true, 0),
        ] {
            let text = d.trunc().to_string();
            assert_eq!(whole(d).unwrap(), text.as_str(), "{d}");
        }
    }

    #[test]
    fn headers_report_the_tightest_counter() {
        let rpm = Limits::none().with(Metric::Requests, Some(Decimal::from(60)));
        let rpd = Limits::none()
            .with(Metric::Requests, Some(Decimal::from(1000)))
            .with(Metric::Tokens, Some(Decimal::from(50_000)));
        let used = Usage {
            requests: 990,
            tokens: 1234,
            ..Usage::ZERO
        };
        let states = [
            state(
                Window::Minute,
                rpm,
                Usage {
                    requests: 3,
                    ..Usage::ZERO
                },
            ),
            state(Window::Day, rpd, used),
        ];
        let h = rate_headers(&states, at("2026-03-01T10:00:30Z"));
        assert_eq!(h["x-ratelimit-limit-requests"], "1000");
        assert_eq!(h["x-ratelimit-remaining-requests"], "10");
        assert_eq!(h["x-ratelimit-reset-requests"], "13h59m30s");
        assert_eq!(h["x-ratelimit-remaining-tokens"], "48766");
        assert!(rate_headers(&[], at("2026-03-01T10:00:30Z")).is_empty());
    }

    #[test]
    fn a_balance_is_reported_before_a_window() {
        let spend = |max: i64| Limits::none().with(Metric::Spend, Some(Decimal::new(max, 2)));
        let est = Usage {
            spend: Decimal::new(5, 2),
            requests: 1,
            ..Usage::ZERO
        };
        let used = Usage {
            spend: Decimal::new(98, 2),
            ..Usage::ZERO
        };
        let states = vec![
            state(Window::Day, spend(100), used),
            state(Window::Total, spend(100), used),
        ];
        let checks: Vec<Check> = states
            .iter()
            .map(|s| Check {
                counter: s.counter.clone(),
                estimate: est,
                defaults: Limits::none(),
            })
            .collect();
        let r = Refusal::find(&checks, &states).unwrap();
        assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(r.code(), "insufficient_credits");
        let resp = r.response(
            LlmApi::OpenAiChat,
            at("2026-03-01T10:00:00Z"),
            HeaderMap::new(),
        );
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["error"]["type"], "insufficient_credits");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("$0.98 used")
        );

        let r = Refusal::find(&checks[..1], &states[..1]).unwrap();
        assert_eq!(r.code(), "spend_limit_day");
        let resp = r.response(
            LlmApi::AnthropicMessages,
            at("2026-03-01T10:00:00Z"),
            HeaderMap::new(),
        );
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "50400");
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        let resp = r.response(
            LlmApi::GeminiGenerate,
            at("2026-03-01T10:00:00Z"),
            HeaderMap::new(),
        );
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    }
}
