//! `bunder`: the Redis-compatible server (port 6379).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bunbase_core::config::resolve_secret;
use bunbase_core::kv::aof::{Aof, FsyncPolicy};
use bunbase_core::kv::engine::EvictionPolicy;
use bunbase_core::kv::resp::Limits;
use bunbase_core::kv::snapshot::Snapshots;
use bunbase_core::kv::tx::Transactions;
use bunbase_core::kv::{Engine, EngineConfig};
use bunbase_core::metrics::Registry;
use bunbase_shells::bunder::{self, BunderConfig};
use bunbase_shells::cli::{self, parse_size_arg};
use bunbase_shells::kit::{self, ServerConfig, Shutdown};
use clap::Parser;

/// Bunder: a Redis-protocol key-value server.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, env = "BUNDER_LISTEN", default_value = "127.0.0.1:6379")]
    listen: String,
    /// Password clients must AUTH with (requirepass).
    #[arg(long, env = "BUNDER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// File holding the password; must be chmod 600.
    #[arg(long, env = "BUNDER_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Most simultaneous clients.
    #[arg(long, env = "BUNDER_MAX_CLIENTS", default_value_t = 10_000)]
    max_clients: usize,
    /// Largest bulk string a client may send (proto-max-bulk-len).
    #[arg(long, env = "BUNDER_MAX_BULK_LEN", default_value = "512MiB", value_parser = parse_size_arg)]
    max_bulk_len: usize,
    /// Number of databases.
    #[arg(long, env = "BUNDER_DATABASES", default_value_t = 16)]
    databases: usize,
    /// Keep an append-only file of every write and replay it at start.
    #[arg(long, env = "BUNDER_APPENDONLY", default_value_t = false)]
    appendonly: bool,
    /// When the append-only file is fsynced: always, everysec or no.
    #[arg(long, env = "BUNDER_APPENDFSYNC", default_value = "everysec")]
    appendfsync: String,
    /// Rewrite (compact) the append-only file after this many logged writes.
    #[arg(long, env = "BUNDER_REWRITE_AFTER", default_value_t = 1_000_000)]
    rewrite_after: u64,
    /// Where the append-only file lives.
    #[arg(long, env = "BUNDER_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Most memory for keys and values (estimated), e.g. 256MiB; none by default.
    #[arg(long, env = "BUNDER_MAXMEMORY", value_parser = parse_size_arg)]
    maxmemory: Option<usize>,
    /// Over --maxmemory: noeviction (writes fail), allkeys-lru or volatile-lru.
    #[arg(long, env = "BUNDER_MAXMEMORY_POLICY", default_value = "noeviction")]
    maxmemory_policy: EvictionPolicy,
    /// Save a snapshot (bunder.snapshot in --data-dir) every this many seconds and
    /// at shutdown; 0 = only on SAVE / BGSAVE. Without --appendonly the snapshot
    /// is loaded at start (persistence like Redis's RDB).
    #[arg(long, env = "BUNDER_SNAPSHOT_INTERVAL", default_value_t = 0)]
    snapshot_interval: u64,
    /// Threads serving connections (default: one per core).
    #[arg(long, env = "BUNDER_THREADS")]
    threads: Option<usize>,
    /// Serve without a password on an address other machines can reach (a
    /// private network only). Without it, a non-loopback --listen needs
    /// BUNDER_PASSWORD (Redis's protected mode).
    #[arg(long, env = "BUNDER_UNPROTECTED", default_value_t = false)]
    unprotected: bool,
    /// Serve /metrics (Prometheus) and /health over HTTP on this address, e.g.
    /// 127.0.0.1:9121. Off unless set.
    #[arg(long, env = "BUNDER_METRICS_LISTEN")]
    metrics_listen: Option<String>,
}

fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args = Args::parse();
    // Commands run on the connections' threads: as many as cores by
    // default, one for a Redis-like single-threaded server.
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let password = resolve_secret(
        "BUNDER_PASSWORD",
        args.password.clone(),
        args.password_file.as_deref(),
    )?;
    let engine = Arc::new(Engine::new(EngineConfig {
        databases: args.databases.clamp(1, 1024),
        max_memory: args.maxmemory.filter(|m| *m > 0),
        eviction: args.maxmemory_policy,
        ..EngineConfig::default()
    }));
    let tx = Arc::new(Transactions::default());
    let snapshots = Arc::new(Snapshots::new(
        args.data_dir.join("bunder.snapshot"),
        engine.clone(),
        tx.clone(),
    ));
    // The append-only file, when on, holds every write: it alone is
    // loaded. Otherwise the last snapshot is. Turning the file on for a
    // server that had only snapshots seeds it from the snapshot.
    let aof = if args.appendonly {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        let path = args.data_dir.join("bunder.aof");
        let policy = FsyncPolicy::parse(&args.appendfsync)?;
        let seeded = if path.exists() {
            None
        } else {
            snapshots.load().context("loading the snapshot")?
        };
        let (aof, loaded) =
            Aof::open(&path, policy, &engine).context("loading the append-only file")?;
        if let Some(commands) = seeded {
            aof.rewrite(&engine)
                .context("writing the snapshot into the new append-only file")?;
            tracing::info!(path = %path.display(), commands, "append-only file created from the snapshot");
        } else {
            tracing::info!(path = %path.display(), commands = loaded.commands, truncated = loaded.truncated, "append-only file loaded");
            if snapshots.path().exists() {
                tracing::info!(path = %snapshots.path().display(), "snapshot not loaded: the append-only file is authoritative");
            }
        }
        Some(Arc::new(aof))
    } else {
        if let Some(commands) = snapshots.load().context("loading the snapshot")? {
            tracing::info!(path = %snapshots.path().display(), commands, "snapshot loaded");
        }
        None
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    anyhow::ensure!(
        bound.ip().is_loopback() || password.is_some() || args.unprotected,
        "--listen {} is reachable from other machines and there is no password: set BUNDER_PASSWORD (or _FILE), listen on 127.0.0.1, or pass --unprotected (BUNDER_UNPROTECTED=true) on a private network",
        args.listen
    );
    if !bound.ip().is_loopback() && password.is_none() {
        tracing::warn!(address = %bound, "serving without a password (--unprotected): keep this port on a private network");
    }
    tracing::info!(address = %bound, "bunder serving RESP");
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);
    let metrics = match &args.metrics_listen {
        Some(address) => {
            let http = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for metrics on {address}"))?;
            tracing::info!(address = %http.local_addr()?, "bunder serving /metrics and /health");
            let registry = Registry::new();
            registry.register(Box::new(bunder::BunderCollector::new(
                engine.clone(),
                aof.clone(),
            )))?;
            let service = kit::Service::new("bunder", axum::Router::new());
            let shutdown = shutdown.clone();
            Some(tokio::spawn(async move {
                kit::serve(
                    http,
                    vec![service],
                    &registry,
                    ServerConfig::default(),
                    shutdown,
                )
                .await
            }))
        }
        None => None,
    };
    let config = BunderConfig {
        max_clients: args.max_clients,
        limits: Limits {
            max_bulk_len: args.max_bulk_len,
            ..Limits::default()
        },
        password: password.map(|p| p.expose().to_string()),
        aof,
        rewrite_after: args.rewrite_after.max(1000),
        snapshots: Some(snapshots),
        snapshot_every: (args.snapshot_interval > 0)
            .then(|| std::time::Duration::from_secs(args.snapshot_interval)),
    };
    let upkeep = bunder::spawn_upkeep(engine.clone(), &config, shutdown.token.clone());
    bunder::serve_shared(listener, engine, config, tx, shutdown.token.clone()).await;
    upkeep.close();
    upkeep.wait().await; // the final fsync and snapshot
    if let Some(metrics) = metrics {
        shutdown.trigger();
        metrics.await??;
    }
    tracing::info!("bunder stopped");
    Ok(())
}
