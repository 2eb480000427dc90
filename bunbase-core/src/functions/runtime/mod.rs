//! The engine: QuickJS instances on a few worker threads, warm between
//! invocations.
//!
//! QuickJS is single-threaded, so each instance lives on one worker thread
//! (a current-thread tokio runtime) and never moves. The [`Engine`] handle
//! is `Send + Sync`: it sends each invocation to a worker (the one its
//! version hashes to, unless that one is busier than another) and awaits
//! the answer. A worker keeps idle instances per version key; a version's
//! instances never serve another version or project.

mod budget;
mod instance;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

pub use instance::{MAX_LINE_BYTES, MAX_LOG_LINES};

use super::compile::Bundle;
use super::model::{Limits, LogLine, Outcome};
use super::web::{FetchRequest, FetchResponse, HttpRequest, HttpResponse};
use crate::error::Error;

/// What a function's code may reach beyond itself: `ctx.bunbase.*` and
/// `fetch`. One per function version (its project, its credential, its
/// allow-list).
#[async_trait]
pub trait Bindings: Send + Sync + 'static {
    /// `docs.get`, `kv.set`, … with JSON arguments.
    async fn call(&self, method: &str, args: serde_json::Value)
    -> Result<serde_json::Value, Error>;
    /// An outgoing request; `Err` is the message of the TypeError `fetch`
    /// rejects with.
    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, String>;
}

/// Which instances may serve an invocation: those of exactly this version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceKey {
    pub project: String,
    pub function: String,
    pub version: u32,
    /// The bundle's SHA-256: a redeployed number (after a delete) never
    /// reuses an old runtime.
    pub bundle: String,
}

impl InstanceKey {
    fn worker_hash(&self) -> usize {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(7).hash_one(self) as usize
    }
}

/// One invocation's input.
pub struct Call {
    pub request: HttpRequest,
    /// JSON given to the `ctx` factory: env, project, function, version,
    /// invocation id, trigger, auth.
    pub details: String,
}

/// Everything needed to run a call, cold or warm.
pub struct Job {
    pub key: InstanceKey,
    pub bundle: Arc<Bundle>,
    pub limits: Limits,
    pub bindings: Arc<dyn Bindings>,
    pub call: Call,
}

/// How an invocation went.
#[derive(Debug, Clone)]
pub struct Output {
    pub outcome: Outcome,
    pub response: Option<HttpResponse>,
    pub error: Option<String>,
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
    pub cold: bool,
    pub duration: Duration,
    pub cpu_us: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Worker threads (each runs one invocation's JavaScript at a time).
    pub workers: usize,
    /// Idle instances a worker keeps (the least recently used go first).
    pub max_idle_per_worker: usize,
    /// An idle instance unused this long is dropped.
    pub idle_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            max_idle_per_worker: 256,
            idle_ttl: Duration::from_secs(300),
        }
    }
}

enum Message {
    Run(Box<Job>, oneshot::Sender<Output>),
    /// Drop idle instances of these functions (`project/function`).
    Forget(String),
    Stats(oneshot::Sender<worker::Stats>),
}

struct WorkerHandle {
    sender: mpsc::UnboundedSender<Message>,
    /// Invocations sent and not yet answered.
    load: Arc<AtomicUsize>,
}

/// The handle shells and the functions service hold.
pub struct Engine {
    workers: Vec<WorkerHandle>,
}

/// What the engine holds, for metrics and the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineStats {
    pub idle_instances: usize,
    pub heap_bytes: u64,
}

impl Engine {
    pub fn start(config: EngineConfig) -> Result<Engine, Error> {
        let mut workers = Vec::with_capacity(config.workers);
        for index in 0..config.workers.max(1) {
            let (sender, receiver) = mpsc::unbounded_channel();
            let load = Arc::new(AtomicUsize::new(0));
            worker::spawn(index, config, receiver)?;
            workers.push(WorkerHandle { sender, load });
        }
        Ok(Engine { workers })
    }

    /// Runs a job on a worker. Never fails: a stopped engine answers with
    /// an error outcome.
    pub async fn run(&self, job: Job) -> Output {
        let handle = self.pick(&job.key);
        handle.load.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let sent = handle.sender.send(Message::Run(Box::new(job), reply));
        let output = match sent {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        handle.load.fetch_sub(1, Ordering::Relaxed);
        output.unwrap_or_else(|| Output {
            outcome: Outcome::Error,
            response: None,
            error: Some("the function engine is shutting down".into()),
            logs: Vec::new(),
            logs_truncated: false,
            cold: false,
            duration: Duration::ZERO,
            cpu_us: 0,
        })
    }

    /// Drops the idle instances of a function (after a deploy, rollback or
    /// delete) on every worker.
    pub fn forget(&self, project: &str, function: &str) {
        for worker in &self.workers {
            let _ = worker
                .sender
                .send(Message::Forget(format!("{project}/{function}")));
        }
    }

    pub async fn stats(&self) -> EngineStats {
        let mut total = EngineStats::default();
        for worker in &self.workers {
            let (reply, answer) = oneshot::channel();
            if worker.sender.send(Message::Stats(reply)).is_ok()
                && let Ok(stats) = answer.await
            {
                total.idle_instances += stats.idle_instances;
                total.heap_bytes += stats.heap_bytes;
            }
        }
        total
    }

    /// The worker a version prefers (its warm instances are there), unless
    /// it is busier than the least busy by more than one invocation.
    fn pick(&self, key: &InstanceKey) -> &WorkerHandle {
        let preferred = &self.workers[key.worker_hash() % self.workers.len()];
        let least = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .unwrap_or(preferred);
        if preferred.load.load(Ordering::Relaxed) > least.load.load(Ordering::Relaxed) + 1 {
            least
        } else {
            preferred
        }
    }
}

/// The `details` JSON of a call.
pub fn details(
    env: &BTreeMap<String, String>,
    fields: serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut all = fields;
    all.insert("env".into(), serde_json::json!(env));
    serde_json::Value::Object(all).to_string()
}
