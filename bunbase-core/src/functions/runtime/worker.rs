//! A worker thread: a current-thread tokio runtime that owns QuickJS
//! instances, runs each invocation as a local task and keeps idle instances
//! warm per version.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::LocalSet;

use super::instance::Instance;
use super::{EngineConfig, InstanceKey, Job, Message, Output};
use crate::error::Error;

/// Worker threads' stack: QuickJS stops recursion at its own 1 MiB limit,
/// far below this.
const STACK_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub idle_instances: usize,
    pub heap_bytes: u64,
}

pub fn spawn(
    index: usize,
    config: EngineConfig,
    receiver: mpsc::UnboundedReceiver<Message>,
) -> Result<(), Error> {
    std::thread::Builder::new()
        .name(format!("fn-worker-{index}"))
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "function worker cannot start");
                    return;
                }
            };
            let local = LocalSet::new();
            local.block_on(&runtime, serve(config, receiver));
        })
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("cannot start a function worker: {e}")))
}

/// Idle instances by version, with when each was last used.
#[derive(Default)]
struct Pool {
    idle: HashMap<InstanceKey, Vec<(Instance, Instant)>>,
    count: usize,
}

impl Pool {
    fn take(&mut self, key: &InstanceKey) -> Option<Instance> {
        let list = self.idle.get_mut(key)?;
        let (instance, _) = list.pop()?;
        if list.is_empty() {
            self.idle.remove(key);
        }
        self.count -= 1;
        Some(instance)
    }

    fn put(&mut self, key: InstanceKey, instance: Instance, max: usize) {
        while self.count >= max && self.evict_oldest() {}
        self.idle
            .entry(key)
            .or_default()
            .push((instance, Instant::now()));
        self.count += 1;
    }

    fn evict_oldest(&mut self) -> bool {
        let oldest = self
            .idle
            .iter()
            .filter_map(|(key, list)| list.first().map(|(_, at)| (key.clone(), *at)))
            .min_by_key(|(_, at)| *at);
        let Some((key, _)) = oldest else {
            return false;
        };
        if let Some(list) = self.idle.get_mut(&key) {
            list.remove(0);
            self.count -= 1;
            if list.is_empty() {
                self.idle.remove(&key);
            }
        }
        true
    }

    fn drop_idle_since(&mut self, cut: Instant) {
        for list in self.idle.values_mut() {
            let before = list.len();
            list.retain(|(_, at)| *at >= cut);
            self.count -= before - list.len();
        }
        self.idle.retain(|_, list| !list.is_empty());
    }

    fn forget(&mut self, function: &str) {
        let keys: Vec<InstanceKey> = self
            .idle
            .keys()
            .filter(|k| format!("{}/{}", k.project, k.function) == function)
            .cloned()
            .collect();
        for key in keys {
            if let Some(list) = self.idle.remove(&key) {
                self.count -= list.len();
            }
        }
    }
}

async fn serve(config: EngineConfig, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let pool = std::rc::Rc::new(std::cell::RefCell::new(Pool::default()));
    let mut sweep = tokio::time::interval(Duration::from_secs(10).min(config.idle_ttl));
    loop {
        tokio::select! {
            message = receiver.recv() => match message {
                Some(Message::Run(job, reply)) => {
                    let pool = pool.clone();
                    tokio::task::spawn_local(async move {
                        let output = run(&pool, *job, config.max_idle_per_worker).await;
                        let _ = reply.send(output);
                    });
                }
                Some(Message::Forget(function)) => pool.borrow_mut().forget(&function),
                Some(Message::Stats(reply)) => {
                    let _ = reply.send(stats(&pool).await);
                }
                None => break,
            },
            _ = sweep.tick() => {
                if let Some(cut) = Instant::now().checked_sub(config.idle_ttl) {
                    pool.borrow_mut().drop_idle_since(cut);
                }
            }
        }
    }
}

async fn stats(pool: &std::rc::Rc<std::cell::RefCell<Pool>>) -> Stats {
    // Instances are taken out while their heap is read (the read awaits).
    let taken: Vec<(InstanceKey, Instance)> = {
        let mut pool = pool.borrow_mut();
        let keys: Vec<InstanceKey> = pool.idle.keys().cloned().collect();
        let mut taken = Vec::new();
        for key in keys {
            while let Some(instance) = pool.take(&key) {
                taken.push((key.clone(), instance));
            }
        }
        taken
    };
    let mut stats = Stats {
        idle_instances: taken.len(),
        heap_bytes: 0,
    };
    for (_, instance) in &taken {
        stats.heap_bytes += instance.heap_bytes().await;
    }
    let mut pool = pool.borrow_mut();
    for (key, instance) in taken {
        pool.put(key, instance, usize::MAX);
    }
    stats
}

async fn run(pool: &std::rc::Rc<std::cell::RefCell<Pool>>, job: Job, max_idle: usize) -> Output {
    let started = Instant::now();
    let warm = pool.borrow_mut().take(&job.key);
    let (mut instance, cold) = match warm {
        Some(instance) => (instance, false),
        None => {
            match Instance::start(job.bundle.clone(), &job.limits, job.bindings.clone()).await {
                Ok(instance) => (instance, true),
                Err(failure) => {
                    return Output {
                        outcome: failure.outcome,
                        response: None,
                        error: Some(failure.message),
                        logs: failure.logs.lines,
                        logs_truncated: failure.logs.truncated,
                        cold: true,
                        duration: started.elapsed(),
                        cpu_us: 0,
                    };
                }
            }
        }
    };
    let mut output = instance.invoke(job.call, &job.limits).await;
    output.cold = cold;
    output.duration = started.elapsed();
    if !instance.poisoned {
        pool.borrow_mut().put(job.key, instance, max_idle);
    }
    output
}
