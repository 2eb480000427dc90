//! What the benchmark programs share: timing a concurrent operation.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;

/// How long each measurement warms up, then counts.
#[derive(Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub run: Duration,
}

/// Operations per second and the latency of those counted.
#[derive(Clone, Copy)]
pub struct Figure {
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Runs `op(worker)` in a loop from `workers` concurrent tasks for
/// `warmup + run`; operations per second over `run`. The first error stops
/// every task and is returned: a benchmark that counts failures as work
/// would be measuring the wrong thing.
pub async fn measure<F, Fut>(workers: usize, timing: Timing, op: F) -> anyhow::Result<Figure>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let failed = Arc::new(AtomicBool::new(false));
    let counting_from = Instant::now() + timing.warmup;
    let end = counting_from + timing.run;
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let op = op.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<Duration> = Vec::new();
            while Instant::now() < end && !failed.load(Ordering::Relaxed) {
                let started = Instant::now();
                if let Err(e) = op(worker).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                if started >= counting_from {
                    latencies.push(started.elapsed());
                }
                // An in-memory path never waits on anything; without this
                // two tasks would hold both workers and the other N-2 would
                // never run, which is not "N concurrent callers".
                tokio::task::yield_now().await;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let rate = latencies.len() as f64 / counting_from.elapsed().as_secs_f64();
    ensure!(
        !latencies.is_empty(),
        "nothing completed in the measurement"
    );
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Figure {
        rate,
        p50: at(0.50),
        p99: at(0.99),
    })
}

/// Resident memory of process `pid`, in bytes (0 if it is gone).
pub fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
