//! The CPU and wall-time budget of one invocation, checked from QuickJS's
//! interrupt handler (called every few thousand bytecode operations while
//! JavaScript runs).
//!
//! CPU time is this thread's CPU clock, counted only in the short gaps
//! between two interrupt calls of the same runtime: a long gap means the
//! thread ran something else meanwhile (another instance, a binding's I/O),
//! which is not this invocation's to pay for.

use std::cell::Cell;
use std::time::Instant;

/// Gaps longer than this between two interrupt calls are not counted:
/// QuickJS calls the handler far more often while it runs.
const MAX_COUNTED_GAP_NS: u64 = 10_000_000;

/// Why the engine stopped JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    Cpu,
    Wall,
}

#[derive(Debug, Default)]
pub struct Budget {
    active: Cell<bool>,
    cpu_limit_ns: Cell<u64>,
    used_ns: Cell<u64>,
    last_ns: Cell<u64>,
    wall_deadline: Cell<Option<Instant>>,
    tripped: Cell<Option<Trip>>,
}

impl Budget {
    /// Starts counting an invocation.
    pub fn start(&self, cpu_ms: u32, wall_deadline: Instant) {
        self.cpu_limit_ns.set(u64::from(cpu_ms) * 1_000_000);
        self.used_ns.set(0);
        self.last_ns.set(thread_cpu_ns());
        self.wall_deadline.set(Some(wall_deadline));
        self.tripped.set(None);
        self.active.set(true);
    }

    /// Stops counting; returns what stopped the invocation, if anything did.
    pub fn finish(&self) -> Option<Trip> {
        self.active.set(false);
        self.tripped.get()
    }

    pub fn cpu_used_us(&self) -> u64 {
        self.used_ns.get() / 1000
    }

    /// The interrupt handler's answer: whether to stop JavaScript now.
    pub fn interrupt(&self) -> bool {
        if !self.active.get() {
            return false;
        }
        if self.tripped.get().is_some() {
            return true;
        }
        let now = thread_cpu_ns();
        let gap = now.saturating_sub(self.last_ns.get());
        self.last_ns.set(now);
        if gap < MAX_COUNTED_GAP_NS {
            self.used_ns.set(self.used_ns.get() + gap);
        }
        let trip = if self.used_ns.get() > self.cpu_limit_ns.get() {
            Some(Trip::Cpu)
        } else if self.wall_deadline.get().is_some_and(|d| Instant::now() > d) {
            Some(Trip::Wall)
        } else {
            None
        };
        self.tripped.set(trip);
        trip.is_some()
    }
}

/// CPU time this thread has used, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_busy_loop_trips_the_cpu_budget() {
        let budget = Budget::default();
        budget.start(5, Instant::now() + Duration::from_secs(60));
        let started = Instant::now();
        while !budget.interrupt() {
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        assert_eq!(budget.finish(), Some(Trip::Cpu));
        assert!(budget.cpu_used_us() >= 5000);
    }

    #[test]
    fn sleeping_costs_no_cpu_but_trips_the_wall_clock() {
        let budget = Budget::default();
        budget.start(1000, Instant::now() + Duration::from_millis(30));
        assert!(!budget.interrupt());
        std::thread::sleep(Duration::from_millis(40));
        assert!(budget.interrupt());
        assert_eq!(budget.finish(), Some(Trip::Wall));
        assert!(budget.cpu_used_us() < 5000);
    }

    #[test]
    fn an_idle_budget_never_interrupts() {
        let budget = Budget::default();
        assert!(!budget.interrupt());
        budget.start(0, Instant::now());
        budget.finish();
        assert!(!budget.interrupt());
    }
}
