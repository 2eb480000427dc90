//! The accept loop: a connection limit, the expiry sweeper, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bunbase_core::kv::Engine;
use bunbase_core::kv::aof::Aof;
use bunbase_core::kv::pubsub::PubSub;
use bunbase_core::kv::resp::Limits;
use bunbase_core::kv::snapshot::Snapshots;
use bunbase_core::kv::tx::Transactions;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::{self, Shared};

#[derive(Debug, Clone)]
pub struct BunderConfig {
    pub max_clients: usize,
    pub limits: Limits,
    /// `requirepass`: clients must AUTH first.
    pub password: Option<String>,
    /// Persistence, when on.
    pub aof: Option<Arc<Aof>>,
    /// Rewrite the append-only file after this many logged commands.
    pub rewrite_after: u64,
    /// The snapshot file (SAVE, BGSAVE), if any.
    pub snapshots: Option<Arc<Snapshots>>,
    /// Take a snapshot this often (and at shutdown).
    pub snapshot_every: Option<Duration>,
}

impl Default for BunderConfig {
    fn default() -> Self {
        BunderConfig {
            max_clients: 10_000,
            limits: Limits::default(),
            password: None,
            aof: None,
            rewrite_after: 1_000_000,
            snapshots: None,
            snapshot_every: None,
        }
    }
}

/// Serves RESP on `listener` until `stop` is cancelled; open connections
/// are closed then. Runs the engine's upkeep (expiry sweep, append-only
/// file) too.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: BunderConfig,
    stop: CancellationToken,
) {
    let upkeep = spawn_upkeep(engine.clone(), &config, stop.clone());
    serve_shared(listener, engine, config, Arc::default(), stop).await;
    upkeep.close();
    upkeep.wait().await;
}

/// Expiry sweeping, and the append-only file's fsync and rewrites, until
/// `stop`; wait on the tracker for a final fsync.
pub fn spawn_upkeep(
    engine: Arc<Engine>,
    config: &BunderConfig,
    stop: CancellationToken,
) -> TaskTracker {
    let tasks = TaskTracker::new();
    tasks.spawn(sweep(engine.clone(), stop.clone()));
    if let Some(aof) = config.aof.clone() {
        tasks.spawn(persist(aof, engine, config.rewrite_after, stop.clone()));
    }
    if let (Some(snapshots), Some(every)) = (config.snapshots.clone(), config.snapshot_every) {
        tasks.spawn(snapshot_periodically(snapshots, every, stop));
    }
    tasks
}

/// Saves a snapshot every `every`, and a last one at shutdown.
async fn snapshot_periodically(
    snapshots: Arc<Snapshots>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        let saving = snapshots.clone();
        match tokio::task::spawn_blocking(move || saving.save()).await {
            Ok(Ok(saved)) => {
                tracing::info!(commands = saved.commands, path = %snapshots.path().display(), "snapshot saved")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "snapshot failed"),
            Err(e) => tracing::error!(error = %e, "snapshot panicked"),
        }
        if stopping {
            return;
        }
    }
}

/// Serves RESP on an engine shared with in-process users (whose writes go
/// through `tx` too, so WATCH sees them); the caller runs the upkeep.
pub async fn serve_shared(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: BunderConfig,
    tx: Arc<Transactions>,
    stop: CancellationToken,
) {
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        limits: config.limits,
        password: config.password.map(String::into_bytes),
        aof: config.aof.clone(),
        pubsub: Arc::new(PubSub::default()),
        tx,
        snapshots: config.snapshots.clone(),
    });
    let slots = Arc::new(Semaphore::new(config.max_clients.max(1)));
    let ids = AtomicU64::new(1);
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (mut socket, _) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = socket
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
            continue;
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            shared.engine.clients.fetch_add(1, Ordering::Relaxed);
            connection::handle(socket, shared.clone(), id, stop).await;
            shared.engine.clients.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// `everysec` fsyncs, and rewrites the file once it has grown enough.
async fn persist(aof: Arc<Aof>, engine: Arc<Engine>, rewrite_after: u64, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        let flushed = {
            let aof = aof.clone();
            tokio::task::spawn_blocking(move || aof.flush()).await
        };
        if let Ok(Err(e)) = flushed {
            tracing::error!(error = %e, "append-only file fsync failed");
        }
        if stopping {
            return;
        }
        if aof.growth() >= rewrite_after {
            let (aof, engine) = (aof.clone(), engine.clone());
            match tokio::task::spawn_blocking(move || aof.rewrite(&engine)).await {
                Ok(Ok(())) => tracing::info!("append-only file rewritten"),
                Ok(Err(e)) => tracing::error!(error = %e, "append-only file rewrite failed"),
                Err(e) => tracing::error!(error = %e, "append-only file rewrite panicked"),
            }
        }
    }
}

/// Frees expired keys without traffic: a few shards every 100 ms.
async fn sweep(engine: Arc<Engine>, stop: CancellationToken) {
    let mut cursor = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let (next, _) = engine.sweep_expired(cursor, 4);
                cursor = next;
            }
        }
    }
}
