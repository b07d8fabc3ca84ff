//! Rate limits of the public chat API: a [`RateLimiter`] port and its in-memory implementation.
//!
//! The in-memory limiter counts per process: on the local stack that is the whole desk; in AWS
//! it is per Lambda instance, so it is a first line only (it stops one busy visitor or address
//! hammering a warm instance). API Gateway's route throttling on the chat routes
//! (`infra/template.yaml`) is the second line, across all instances.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many requests a key may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window's length.
    pub per: Duration,
}

impl Limit {
    /// `requests` per minute.
    pub const fn per_minute(requests: u32) -> Self {
        Limit {
            requests,
            per: Duration::from_secs(60),
        }
    }
}

/// A request over its limit: when the caller may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// How long until the key's window has room again (at least one second).
    pub retry_after: Duration,
}

/// Counts requests per key (`visitor:<id>:post`, `ip:<addr>`) and refuses those over a limit.
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `key` at `now`; `Err` (and not counted) when it is over `limit`.
    fn check(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> Result<(), Limited>;
}

/// The most keys kept before expired windows are swept (bounds the memory a flood of
/// addresses can take).
const SWEEP_AT: usize = 10_000;

/// Fixed windows per key, in this process's memory.
#[derive(Debug, Default)]
pub struct InMemoryRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: DateTime<Utc>,
    per: Duration,
    count: u32,
}

impl Window {
    fn ended(&self, now: DateTime<Utc>) -> bool {
        now.signed_duration_since(self.start)
            .to_std()
            .unwrap_or_default()
            >= self.per
            || now < self.start
    }
}

impl InMemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn check(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> Result<(), Limited> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT && !windows.contains_key(key) {
            windows.retain(|_, w| !w.ended(now));
        }
        let window = windows.entry(key.to_string()).or_insert(Window {
            start: now,
            per: limit.per,
            count: 0,
        });
        if window.ended(now) {
            *window = Window {
                start: now,
                per: limit.per,
                count: 0,
            };
        }
        if window.count >= limit.requests {
            let elapsed = now
                .signed_duration_since(window.start)
                .to_std()
                .unwrap_or_default();
            let left = limit.per.saturating_sub(elapsed);
            return Err(Limited {
                retry_after: Duration::from_secs(left.as_secs_f64().ceil().max(1.0) as u64),
            });
        }
        window.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    #[test]
    fn allows_the_limit_then_refuses_with_the_time_left() {
        let limiter = InMemoryRateLimiter::new();
        let limit = Limit::per_minute(3);
        for _ in 0..3 {
            assert_eq!(limiter.check("v1", limit, t0()), Ok(()));
        }
        let refused = limiter
            .check("v1", limit, t0() + TimeDelta::seconds(20))
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(40));
    }

    #[test]
    fn keys_are_counted_apart() {
        let limiter = InMemoryRateLimiter::new();
        let limit = Limit::per_minute(1);
        assert!(limiter.check("visitor:a", limit, t0()).is_ok());
        assert!(limiter.check("visitor:b", limit, t0()).is_ok());
        assert!(limiter.check("visitor:a", limit, t0()).is_err());
    }

    #[test]
    fn a_new_window_starts_after_the_old_one_ends() {
        let limiter = InMemoryRateLimiter::new();
        let limit = Limit::per_minute(1);
        assert!(limiter.check("ip:1", limit, t0()).is_ok());
        assert!(limiter
            .check("ip:1", limit, t0() + TimeDelta::seconds(59))
            .is_err());
        assert!(limiter
            .check("ip:1", limit, t0() + TimeDelta::seconds(60))
            .is_ok());
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let limiter = InMemoryRateLimiter::new();
        let limit = Limit::per_minute(1);
        assert!(limiter.check("k", limit, t0()).is_ok());
        let refused = limiter
            .check("k", limit, t0() + TimeDelta::milliseconds(59_900))
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
    }
}
