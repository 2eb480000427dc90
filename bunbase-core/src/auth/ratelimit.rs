//! Abuse limits: token buckets per key (IP, email), and a growing penalty
//! for repeated failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;

/// A bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Failures {
    count: u32,
    blocked_until: Option<Instant>,
    last: Instant,
}

/// In-process limiter. (Each instance limits on its own; with N instances
/// behind the gateway the effective limit is at most N times this.)
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// Failures before delays start, and the longest delay.
const FREE_FAILURES: u32 = 3;
const MAX_PENALTY: Duration = Duration::from_secs(300);
/// Entries idle this long are forgotten.
const IDLE: Duration = Duration::from_secs(3600);
const MAX_ENTRIES: usize = 100_000;

impl RateLimiter {
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for each key, or says how long to wait.
    pub fn check(&self, keys: &[&str]) -> Result<(), Error> {
        self.check_at(keys, Instant::now())
    }

    pub fn check_at(&self, keys: &[&str], now: Instant) -> Result<(), Error> {
        {
            let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            for key in keys {
                if let Some(until) = failures.get(*key).and_then(|f| f.blocked_until)
                    && until > now
                {
                    return Err(limited(until - now, "too many failed attempts"));
                }
            }
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > MAX_ENTRIES {
            buckets.retain(|_, b| now.duration_since(b.updated) < IDLE);
        }
        let per_sec = f64::from(self.rate.per_minute.max(1)) / 60.0;
        let burst = f64::from(self.rate.burst.max(1));
        // Check every key before taking from any, so a refusal changes nothing.
        let mut waits = Duration::ZERO;
        for key in keys {
            let bucket = buckets.entry((*key).to_string()).or_insert(Bucket {
                tokens: burst,
                updated: now,
            });
            let elapsed = now.duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
            bucket.updated = now;
            if bucket.tokens < 1.0 {
                waits = waits.max(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec));
            }
        }
        if !waits.is_zero() {
            return Err(limited(waits, "too many requests"));
        }
        for key in keys {
            if let Some(bucket) = buckets.get_mut(*key) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }

    /// Records a failed attempt: after a few, each further one blocks the
    /// key for twice as long (1 s, 2 s, 4 s … up to 5 min).
    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > MAX_ENTRIES {
            failures.retain(|_, f| now.duration_since(f.last) < IDLE);
        }
        let entry = failures.entry(key.to_string()).or_insert(Failures {
            count: 0,
            blocked_until: None,
            last: now,
        });
        if now.duration_since(entry.last) > IDLE {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count > FREE_FAILURES {
            let exponent = (entry.count - FREE_FAILURES - 1).min(16);
            let penalty = Duration::from_secs(1u64 << exponent).min(MAX_PENALTY);
            entry.blocked_until = Some(now + penalty);
        }
    }

    /// Clears the failure history of a key (after a success).
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

fn limited(wait: Duration, what: &str) -> Error {
    let secs = wait.as_secs().max(1);
    Error::RateLimited {
        message: format!("{what}; retry in {secs} s"),
        retry_after: Some(Duration::from_secs(secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_refill() {
        let limiter = RateLimiter::new(Rate {
            burst: 3,
            per_minute: 60,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(&["ip:1"], t0).unwrap();
        }
        let err = limiter.check_at(&["ip:1"], t0).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::RateLimited);
        assert!(matches!(
            err,
            Error::RateLimited {
                retry_after: Some(_),
                ..
            }
        ));
        // Other keys are independent; one second refills one token.
        limiter.check_at(&["ip:2"], t0).unwrap();
        limiter
            .check_at(&["ip:1"], t0 + Duration::from_secs(1))
            .unwrap();
    }

    #[test]
    fn a_refusal_takes_nothing_from_other_keys() {
        let limiter = RateLimiter::new(Rate {
            burst: 1,
            per_minute: 1,
        });
        let t0 = Instant::now();
        limiter.check_at(&["a"], t0).unwrap();
        assert!(limiter.check_at(&["b", "a"], t0).is_err());
        limiter.check_at(&["b"], t0).unwrap();
    }

    #[test]
    fn repeated_failures_slow_down() {
        let limiter = RateLimiter::new(Rate {
            burst: 100,
            per_minute: 6000,
        });
        for _ in 0..FREE_FAILURES {
            limiter.failed("acct:a");
        }
        limiter.check(&["acct:a"]).unwrap();
        limiter.failed("acct:a");
        assert!(limiter.check(&["acct:a"]).is_err());
        limiter.succeeded("acct:a");
        limiter.check(&["acct:a"]).unwrap();
    }
}
