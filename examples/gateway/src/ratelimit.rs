//! [`RateLimiter`]: a token bucket per client address, and [`registrations`], the middleware
//! that puts one in front of `POST /auth/register`.
//!
//! Each address (an IPv6 address by its `/64`, which one host usually owns whole) may
//! register `per_minute` times in a burst, then once every `60 / per_minute` seconds; past
//! that the answer is `429 rate_limited` with `retry-after`. The table holds at most
//! [`MAX_ADDRESSES`] addresses: when full, addresses whose bucket has refilled are forgotten,
//! and if none has, new addresses are refused until one does — memory stays bounded under a
//! flood from many addresses.
//!
//! Written here rather than with `tower_governor`: that crate keys on the address too but
//! brings `governor`, `dashmap`, `quanta` and a forwarded-header parser into a tree that
//! needs one mutex and one map, and its keyed store grows until something calls
//! `retain_recent`; this table cannot grow past its bound.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::AppState;
use crate::error::ApiError;

/// The most addresses a [`RateLimiter`] remembers.
pub const MAX_ADDRESSES: usize = 100_000;

/// A token bucket per client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    capacity: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_minute` requests per address and minute (a burst of as many).
    pub fn new(per_minute: u32) -> Self {
        Self::with_capacity(per_minute, MAX_ADDRESSES)
    }

    /// Remembering at most `capacity` addresses.
    pub fn with_capacity(per_minute: u32, capacity: usize) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            capacity: capacity.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `addr`; `Err` with the time until one is available.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        let key = bucket_key(addr);
        let now = Instant::now();
        let burst = f64::from(self.per_minute);
        let per_sec = burst / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.capacity {
            buckets.retain(|_, b| refill(*b, now, per_sec, burst) < burst);
            if buckets.len() >= self.capacity {
                return Err(Duration::from_secs_f64(1.0 / per_sec));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refill(*bucket, now, per_sec, burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / per_sec))
        }
    }
}

fn refill(b: Bucket, now: Instant, per_sec: f64, burst: f64) -> f64 {
    (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec).min(burst)
}

/// IPv4 addresses as they are; IPv6 by their `/64`.
fn bucket_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Middleware on `POST /auth/register`: the gateway's
/// [`registrations`](crate::SharedState::registrations) limit per peer address (from
/// [`serve`](crate::serve()), which puts `ConnectInfo` in each request; without one, every
/// request shares the unspecified address's bucket).
pub async fn registrations(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if let Err(wait) = state.registrations.check(addr) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many registrations from this address: try again in {secs} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_per_interval_per_address() {
        let limiter = RateLimiter::new(6);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..6 {
            assert_eq!(limiter.check(a), Ok(()));
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(
            wait <= Duration::from_secs(10) && wait > Duration::from_secs(9),
            "{wait:?}"
        );
        assert_eq!(
            limiter.check("10.0.0.2".parse().unwrap()),
            Ok(()),
            "others unaffected"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(limiter.check(a), Ok(()));
        assert!(limiter.check(a).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_host_is_its_64() {
        let limiter = RateLimiter::new(1);
        assert_eq!(limiter.check("2001:db8::1".parse().unwrap()), Ok(()));
        assert!(limiter.check("2001:db8::ffff:2".parse().unwrap()).is_err());
        assert_eq!(limiter.check("2001:db8:0:1::1".parse().unwrap()), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded() {
        let limiter = RateLimiter::with_capacity(2, 3);
        for i in 1..=3u8 {
            assert_eq!(limiter.check(IpAddr::from([10, 0, 0, i])), Ok(()));
        }
        // Full of buckets still refilling: a fourth address waits.
        assert!(limiter.check(IpAddr::from([10, 0, 0, 4])).is_err());
        assert_eq!(limiter.buckets.lock().unwrap().len(), 3);
        // Once they have refilled they are forgotten and make room.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limiter.check(IpAddr::from([10, 0, 0, 4])), Ok(()));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
