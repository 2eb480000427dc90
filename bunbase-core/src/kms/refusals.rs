//! How much of a project's audit log refused calls may take. Every call is
//! audited, refused ones too (they are what an investigation looks for),
//! but a credential that keeps failing must not grow the log without
//! bound: each credential may record a burst of refusals, then a steady
//! rate; beyond that its refusals are counted, and one `suppressed` entry
//! says how many once it may record again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::ratelimit::{Rate, RateLimiter};

/// Credentials with suppressed refusals remembered at most (beyond, the
/// oldest counts are dropped; the metric still counts them).
const MAX_SUPPRESSED: usize = 10_000;

pub(super) struct RefusalBudget {
    limiter: RateLimiter,
    /// Per credential (project + subject): refusals not recorded yet.
    suppressed: Mutex<HashMap<String, u64>>,
}

/// What to do with one refused call's audit entry.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Record {
    /// Write it, after a `suppressed` entry for this many earlier ones
    /// when that is not zero.
    Write { suppressed_before: u64 },
    /// Over the budget: counted, not written.
    Suppress,
}

impl RefusalBudget {
    pub(super) fn new(rate: Rate) -> RefusalBudget {
        RefusalBudget {
            limiter: RateLimiter::new(rate),
            suppressed: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn record(&self, credential: &str) -> Record {
        let mut suppressed = self.suppressed.lock().unwrap_or_else(|e| e.into_inner());
        if self.limiter.check(&[credential]).is_err() {
            if suppressed.len() >= MAX_SUPPRESSED && !suppressed.contains_key(credential) {
                suppressed.clear();
            }
            *suppressed.entry(credential.to_string()).or_default() += 1;
            return Record::Suppress;
        }
        Record::Write {
            suppressed_before: suppressed.remove(credential).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_counted_then_summarised() {
        let budget = RefusalBudget::new(Rate {
            burst: 3,
            per_minute: 60,
        });
        for _ in 0..3 {
            assert_eq!(
                budget.record("p/a"),
                Record::Write {
                    suppressed_before: 0
                }
            );
        }
        for _ in 0..5 {
            assert_eq!(budget.record("p/a"), Record::Suppress);
        }
        // Another credential has its own budget.
        assert_eq!(
            budget.record("p/b"),
            Record::Write {
                suppressed_before: 0
            }
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            budget.record("p/a"),
            Record::Write {
                suppressed_before: 5
            }
        );
    }
}
