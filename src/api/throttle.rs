//! Per-instance rate limits: searches at the instance's QPS, writes at the server's
//! write QPS. A token bucket per (instance, kind) that holds one second of tokens, so a
//! client at the limit is never refused and a burst above it is, with how long to wait.
//! Both limits are off (0) unless asked for: they emulate the vendor's paid tiers, which a
//! self-hosted server has no reason to impose by default.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::error::ApiError;

/// Which limit an Action counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Searches and comparisons: the instance's QPS.
    Search,
    /// Adds, updates, deletes and imports: the write QPS.
    Write,
}

impl Kind {
    /// The limit an Action counts against; `None` for management Actions.
    pub fn of(action: &str) -> Option<Kind> {
        match action {
            "SearchImageByPic"
            | "SearchImageByName"
            | "SearchImageByFilter"
            | "CompareSimilarByImage"
            | "SearchImageByText" => Some(Kind::Search),
            "AddImage" | "DeleteImage" | "UpdateImage" => Some(Kind::Write),
            _ => None,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets of every instance.
#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<(String, Kind), Bucket>>,
}

impl Throttle {
    /// Takes one token for `instance`'s `kind` at `qps` per second (0 = unlimited), or
    /// answers 403 DeniedRequest with how long to wait.
    pub fn acquire(
        &self,
        instance: &str,
        kind: Kind,
        qps: u32,
        now: Instant,
    ) -> Result<(), ApiError> {
        if qps == 0 {
            return Ok(());
        }
        let rate = qps as f64;
        let mut buckets = self.buckets.lock();
        let bucket = buckets
            .entry((instance.to_string(), kind))
            .or_insert(Bucket {
                tokens: rate,
                last: now,
            });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
        Err(ApiError::throttled(instance, qps, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_rate_and_refuses_bursts_above_it() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..5 {
            assert!(t.acquire("a", Kind::Search, 5, start).is_ok());
        }
        let e = t.acquire("a", Kind::Search, 5, start).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.as_str()), (403, "DeniedRequest"));
        assert!(e
            .retry_after
            .is_some_and(|d| d <= Duration::from_millis(200)));
        // Other instances and kinds have their own buckets.
        assert!(t.acquire("b", Kind::Search, 5, start).is_ok());
        assert!(t.acquire("a", Kind::Write, 5, start).is_ok());
        // A fifth of a second later one more token is there.
        assert!(t
            .acquire("a", Kind::Search, 5, start + Duration::from_millis(201))
            .is_ok());
        assert!(t.acquire("a", Kind::Search, 0, start).is_ok());
        assert_eq!(Kind::of("AddImage"), Some(Kind::Write));
        assert_eq!(Kind::of("Detail"), None);
    }
}
