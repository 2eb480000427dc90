//! Bunder Manager in an assembly: its store (a Redis-protocol server, or
//! the all-in-one's in-process engine with its log, upkeep and optional
//! RESP port), its change stream on the host's bus, its routes under `/kv`.

use std::sync::Arc;

use async_trait::async_trait;
use bunbase_core::Error;
use bunbase_core::config::Secret;
use bunbase_core::kv::adapters::bunder::BunderKv;
use bunbase_core::kv::adapters::memory::{EngineRunner, MemoryKv};
use bunbase_core::kv::aof::{Aof, FsyncPolicy};
use bunbase_core::kv::snapshot::Snapshots;
use bunbase_core::kv::tx::Transactions;
use bunbase_core::kv::{Engine, EngineConfig, Kv, KvLimits, KvMetrics, KvStore};

use super::router;
use crate::assembly::{About, Host, ServiceModule, Started};
use crate::bunder::{self, BunderCollector, BunderConfig};
use crate::kit;

/// Where Bunder Manager keeps the data.
pub enum KvBackend {
    /// A Redis-protocol server (bunder-sys, or Redis): its URL.
    Remote(Secret),
    /// The in-process engine, persisted in `kv.aof` in the data directory.
    Embedded(EmbeddedKv),
    /// A store an embedder or a test opened.
    Store(Arc<dyn KvStore>),
}

pub struct EmbeddedKv {
    pub fsync: FsyncPolicy,
    /// The engine's maxmemory (noeviction); `None` = no limit.
    pub max_memory: Option<usize>,
    /// Also serve the engine to Redis clients on this address.
    pub resp_listen: Option<String>,
    pub resp_password: Option<Secret>,
}

pub struct KvModule {
    pub limits: KvLimits,
    pub backend: KvBackend,
}

impl KvModule {
    pub fn on(store: Arc<dyn KvStore>, limits: KvLimits) -> KvModule {
        KvModule {
            limits,
            backend: KvBackend::Store(store),
        }
    }
}

static ABOUT: About = About::new("kv", &["bunder-manager"], "/kv");

#[async_trait]
impl ServiceModule for KvModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let (store, on): (Arc<dyn KvStore>, String) = match &self.backend {
            KvBackend::Remote(url) => (
                Arc::new(BunderKv::new(url.expose())?),
                "remote KV server".into(),
            ),
            KvBackend::Store(store) => (store.clone(), "given store".into()),
            KvBackend::Embedded(embedded) => start_engine(host, embedded).await?,
        };
        let events = host.events().await?;
        let kv = Kv::new(
            store,
            events,
            self.limits,
            Arc::new(KvMetrics::new(&host.registry)?),
        );
        host.purge_on_project_deletion(Arc::new(kv.clone()));
        host.provide(kv.clone());
        let service = kit::Service::new("bunder-manager", router(host.shell(kv.clone())?)).check(
            "kv-store",
            kv,
            |kv| async move { kv.check().await },
        );
        Ok(Started::new(
            service,
            format!("Bunder Manager: per-project key-value store ({on})"),
        ))
    }

    fn about(&self) -> &'static About {
        &ABOUT
    }
}

/// The in-process engine: loads `kv.aof`, keeps it (and the expiry sweep,
/// and the snapshot file SAVE writes) going until shutdown, and serves it
/// over RESP when asked.
async fn start_engine(
    host: &mut Host,
    embedded: &EmbeddedKv,
) -> Result<(Arc<dyn KvStore>, String), Error> {
    let engine = Arc::new(Engine::new(EngineConfig {
        max_memory: embedded.max_memory,
        ..EngineConfig::default()
    }));
    let tx: Arc<Transactions> = Arc::default();
    std::fs::create_dir_all(&host.data_dir)
        .map_err(|e| Error::invalid(format!("cannot create {}: {e}", host.data_dir.display())))?;
    let path = host.data_dir.join("kv.aof");
    let (aof, loaded) = Aof::open(&path, embedded.fsync, &engine).map_err(|e| {
        e.context(format_args!(
            "loading the KV append-only file {}",
            path.display()
        ))
    })?;
    tracing::info!(
        commands = loaded.commands,
        truncated = loaded.truncated,
        "KV append-only file loaded"
    );
    let aof = Arc::new(aof);
    host.registry
        .register(Box::new(BunderCollector::new(
            engine.clone(),
            Some(aof.clone()),
        )))
        .map_err(|e| Error::internal(format!("registering KV metrics: {e}")))?;
    let config = BunderConfig {
        aof: Some(aof.clone()),
        snapshots: Some(Arc::new(Snapshots::new(
            host.data_dir.join("kv.snapshot"),
            engine.clone(),
            tx.clone(),
        ))),
        ..BunderConfig::default()
    };
    let upkeep = bunder::spawn_upkeep(engine.clone(), &config, host.shutdown.token.clone());
    let mut on = "in-process engine, kv.aof".to_string();
    if let Some(address) = &embedded.resp_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| Error::invalid(format!("cannot listen for RESP on {address}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("RESP listener: {e}")))?;
        // Like Redis's protected mode: every project's keys are on this
        // port, so beyond loopback it needs a password.
        if !bound.ip().is_loopback() && embedded.resp_password.is_none() {
            return Err(Error::invalid(format!(
                "--resp-listen {address} is reachable from other machines: set BUNBASE_RESP_PASSWORD (or _FILE), or listen on 127.0.0.1"
            )));
        }
        let server = tokio::spawn(bunder::serve_shared(
            listener,
            engine.clone(),
            BunderConfig {
                password: embedded
                    .resp_password
                    .as_ref()
                    .map(|p| p.expose().to_string()),
                ..config
            },
            tx.clone(),
            host.shutdown.token.clone(),
        ));
        host.finish_with(async move {
            let _ = server.await;
        });
        on.push_str(&format!(
            "; the same engine for Redis clients on redis://{bound}"
        ));
    }
    // After the RESP clients' last writes: the final fsync.
    host.finish_with(async move {
        upkeep.close();
        upkeep.wait().await;
    });
    let store = MemoryKv::on(EngineRunner::new(engine, tx, Some(aof)));
    Ok((Arc::new(store), on))
}
