//! Per-caller rate limiting: `RATE_LIMIT_MAX` requests per `RATE_LIMIT_WINDOW_MS`, in fixed
//! windows, counted in memory (one process; the queue issue's Redis can share it later).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::error::ApiError;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    max: u32,
    window: Duration,
    buckets: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            max,
            window,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `key`; 429 with `Retry-After` when its window is full.
    pub(crate) fn check(&self, key: &str) -> Result<(), ApiError> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            let window = self.window;
            buckets.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(bucket.0) >= self.window {
            *bucket = (now, 0);
        }
        if bucket.1 >= self.max {
            let left = self.window.saturating_sub(now.duration_since(bucket.0));
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "rate limit of {} requests per {} ms reached; retry in {} s",
                    self.max,
                    self.window.as_millis(),
                    left.as_secs_f64().ceil()
                ),
            );
            e.retry_after = Some(left.as_secs_f64().ceil().max(1.0) as u64);
            return Err(e);
        }
        bucket.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_until_it_ends() {
        let limiter = RateLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(limiter.check_at("a", t0).is_ok());
        assert!(limiter.check_at("a", t0).is_ok());
        let e = limiter
            .check_at("a", t0 + Duration::from_secs(3))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(7));
        // Other callers have their own window.
        assert!(limiter.check_at("b", t0).is_ok());
        assert!(limiter.check_at("a", t0 + Duration::from_secs(10)).is_ok());
    }
}
