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
///
/// Its memory is bounded: a bucket that has refilled holds nothing a new
/// one wouldn't, so it is forgotten; failures are forgotten after an idle
/// hour; a refused request creates no state; and past `max_entries` keys
/// the least recently used are dropped first.
pub struct RateLimiter {
    rate: Rate,
    max_entries: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// Failures before delays start, and the longest delay.
const FREE_FAILURES: u32 = 3;
const MAX_PENALTY: Duration = Duration::from_secs(300);
/// Failures idle this long are forgotten.
const IDLE: Duration = Duration::from_secs(3600);
/// Keys each map holds at most (about 100 bytes each).
const MAX_ENTRIES: usize = 100_000;

impl RateLimiter {
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter::with_capacity(rate, MAX_ENTRIES)
    }

    /// A limiter holding at most `max_entries` keys per map.
    pub fn with_capacity(rate: Rate, max_entries: usize) -> RateLimiter {
        RateLimiter {
            rate,
            max_entries: max_entries.max(1),
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Keys held (buckets, failure records), for tests and metrics.
    pub fn entries(&self) -> (usize, usize) {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len();
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        (buckets, failures)
    }

    /// Takes one token for each key, or says how long to wait.
    pub fn check(&self, keys: &[&str]) -> Result<(), Error> {
        self.check_at(keys, Instant::now())
    }

    fn per_sec(&self) -> f64 {
        f64::from(self.rate.per_minute.max(1)) / 60.0
    }

    fn burst(&self) -> f64 {
        f64::from(self.rate.burst.max(1))
    }

    /// A bucket's tokens at `now`.
    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec()).min(self.burst())
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
        // Check every key before taking from any, so a refusal changes
        // nothing (and a key never seen has a full bucket).
        let mut waits = Duration::ZERO;
        for key in keys {
            let tokens = buckets
                .get(*key)
                .map_or(self.burst(), |b| self.refilled(b, now));
            if tokens < 1.0 {
                waits = waits.max(Duration::from_secs_f64((1.0 - tokens) / self.per_sec()));
            }
        }
        if !waits.is_zero() {
            return Err(limited(waits, "too many requests"));
        }
        if buckets.len() + keys.len() > self.max_entries {
            self.prune_buckets(&mut buckets, now);
        }
        for key in keys {
            let tokens = buckets
                .get(*key)
                .map_or(self.burst(), |b| self.refilled(b, now));
            buckets.insert(
                (*key).to_string(),
                Bucket {
                    tokens: tokens - 1.0,
                    updated: now,
                },
            );
        }
        Ok(())
    }

    /// Forgets refilled buckets, then the least recently used until a
    /// tenth of the room is free.
    fn prune_buckets(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let burst = self.burst();
        buckets.retain(|_, b| self.refilled(b, now) < burst);
        let target = self.max_entries - self.max_entries / 10 - 1;
        if buckets.len() > target {
            let mut by_age: Vec<(Instant, String)> = buckets
                .iter()
                .map(|(k, b)| (b.updated, k.clone()))
                .collect();
            by_age.sort_unstable();
            for (_, key) in by_age.into_iter().take(buckets.len() - target) {
                buckets.remove(&key);
            }
        }
    }

    /// Records a failed attempt: after a few, each further one blocks the
    /// key for twice as long (1 s, 2 s, 4 s … up to 5 min).
    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if !failures.contains_key(key) && failures.len() >= self.max_entries {
            // Forget what is idle or no longer blocking, then the oldest.
            failures.retain(|_, f| {
                now.duration_since(f.last) < IDLE && f.blocked_until.is_some_and(|u| u > now)
            });
            let target = self.max_entries - self.max_entries / 10 - 1;
            if failures.len() > target {
                let mut by_age: Vec<(Instant, String)> =
                    failures.iter().map(|(k, f)| (f.last, k.clone())).collect();
                by_age.sort_unstable();
                for (_, key) in by_age.into_iter().take(failures.len() - target) {
                    failures.remove(&key);
                }
            }
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
    fn a_refusal_creates_no_state() {
        let limiter = RateLimiter::new(Rate {
            burst: 1,
            per_minute: 1,
        });
        let t0 = Instant::now();
        limiter.check_at(&["ip:1"], t0).unwrap();
        for n in 0..1000 {
            let email = format!("email:{n}@example.com");
            assert!(limiter.check_at(&["ip:1", &email], t0).is_err());
        }
        assert_eq!(limiter.entries().0, 1, "only the IP's bucket");
    }

    #[test]
    fn memory_stays_bounded_under_new_keys() {
        let limiter = RateLimiter::with_capacity(
            Rate {
                burst: 2,
                per_minute: 1,
            },
            100,
        );
        let t0 = Instant::now();
        // Fresh keys faster than buckets refill: the oldest go first.
        for n in 0..10_000 {
            let key = format!("email:{n}");
            limiter
                .check_at(&[&key], t0 + Duration::from_millis(n))
                .unwrap();
            limiter.failed(&key);
        }
        let (buckets, failures) = limiter.entries();
        assert!(buckets <= 100 && failures <= 100, "{buckets} {failures}");
        // A recent key keeps its state: its bucket is still drained.
        limiter
            .check_at(&["email:9999"], t0 + Duration::from_millis(9_999))
            .unwrap();
        assert!(
            limiter
                .check_at(&["email:9999"], t0 + Duration::from_millis(9_999))
                .is_err()
        );
        // Refilled buckets are forgotten at the next prune.
        let later = t0 + Duration::from_secs(3 * 60 * 60);
        for n in 0..100 {
            limiter.check_at(&[&format!("new:{n}")], later).unwrap();
        }
        assert!(limiter.entries().0 <= 100);
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
