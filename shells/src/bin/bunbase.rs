//! `bunbase`: every BunBase service in one process on one port, each under
//! its gateway prefix, on embedded defaults under `--data-dir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bunbase_core::auth::adapters::sql::sqlite::SqliteStore;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::{
    AuthMetrics, AuthStore, Identity, IdentityConfig, StaticTokens, Verifiers,
};
use bunbase_core::config::resolve_secret;
use bunbase_core::id::random_hex;
use bunbase_core::kms::{Keys, LocalKeys};
use bunbase_core::kv::adapters::memory::{EngineRunner, MemoryKv};
use bunbase_core::kv::aof::{Aof, FsyncPolicy};
use bunbase_core::kv::snapshot::Snapshots;
use bunbase_core::kv::tx::Transactions;
use bunbase_core::kv::{Engine, EngineConfig, KvStore};
use bunbase_core::metrics::Registry;
use bunbase_shells::buncast::{self, BuncastState, EventsArgs};
use bunbase_shells::bunder::{self, BunderConfig};
use bunbase_shells::bundoc::{self, DocsArgs, DocsState};
use bunbase_shells::bunkms::{self, KmsArgs, KmsState};
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::kit::{self, Shutdown};
use bunbase_shells::kvmanager::{self, KvArgs, KvState};
use bunbase_shells::platform::{self, PlatformState};
use clap::Parser;

/// BunBase all-in-one: the whole platform in one process.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BUNBASE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The platform's public URL (the token issuer is this + /api); default http://<listen address>.
    #[arg(long, env = "BUNBASE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Where embedded data lives (created if missing).
    #[arg(long, env = "BUNBASE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a).
    /// Without any, a development token for project `demo` is created in the data directory.
    #[arg(long, env = "BUNBASE_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// File with service tokens, one PROJECT:RIGHTS:TOKEN per line; must be chmod 600.
    #[arg(long, env = "BUNBASE_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    #[command(flatten)]
    events: EventsArgs,
    #[command(flatten)]
    kv: KvArgs,
    #[command(flatten)]
    kms: KmsArgs,
    #[command(flatten)]
    docs: DocsArgs,
    /// Also serve the KV engine over RESP (Redis clients) on this address, e.g.
    /// 127.0.0.1:6379. Off unless set.
    #[arg(long, env = "BUNBASE_RESP_LISTEN")]
    resp_listen: Option<String>,
    /// Password RESP clients must AUTH with.
    #[arg(long, env = "BUNBASE_RESP_PASSWORD", hide_env_values = true)]
    resp_password: Option<String>,
    /// File holding the RESP password; must be chmod 600.
    #[arg(long, env = "BUNBASE_RESP_PASSWORD_FILE")]
    resp_password_file: Option<PathBuf>,
    /// When the KV engine's append-only file (kv.aof) is fsynced: always, everysec or no.
    #[arg(long, env = "BUNBASE_KV_APPENDFSYNC", default_value = "everysec")]
    kv_appendfsync: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// The KV engine of the all-in-one, persisted in the data directory.
struct LocalKv {
    engine: Arc<Engine>,
    tx: Arc<Transactions>,
    aof: Arc<Aof>,
}

fn open_local_kv(data_dir: &Path, fsync: &str) -> anyhow::Result<LocalKv> {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let path = data_dir.join("kv.aof");
    let (aof, loaded) = Aof::open(&path, FsyncPolicy::parse(fsync)?, &engine)
        .with_context(|| format!("loading the KV append-only file {}", path.display()))?;
    tracing::info!(
        commands = loaded.commands,
        truncated = loaded.truncated,
        "KV append-only file loaded"
    );
    Ok(LocalKv {
        engine,
        tx: Arc::default(),
        aof: Arc::new(aof),
    })
}

const DEV_TOKENS_FILE: &str = "dev-tokens";

/// Loads (or creates, mode 600) the development token file.
fn dev_tokens(data_dir: &Path) -> anyhow::Result<(StaticTokens, String, PathBuf)> {
    let path = data_dir.join(DEV_TOKENS_FILE);
    if !path.exists() {
        let line = format!("demo:rwa:bb_dev_{}\n", random_hex(32));
        write_private(&path, &line)?;
    }
    let spec = bunbase_core::config::read_secret_file(&path)?;
    let tokens = StaticTokens::parse(spec.expose())?;
    let token = spec
        .expose()
        .lines()
        .find_map(|l| l.splitn(3, ':').nth(2))
        .unwrap_or_default()
        .to_string();
    Ok((tokens, token, path))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;

    let configured = cli::load_tokens(
        "BUNBASE_TOKENS",
        args.tokens.clone(),
        args.tokens_file.as_ref(),
    )?;
    let (tokens, dev_note) = match configured {
        Some(tokens) => (tokens, None),
        None => {
            let (tokens, token, path) = dev_tokens(&args.data_dir)?;
            (tokens, Some((token, path)))
        }
    };

    let registry = Registry::new();
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let issuer = format!("{}/api", public_url.trim_end_matches('/'));

    // Identity: SQLite in the data directory.
    let store = Arc::new(
        SqliteStore::open(&args.data_dir.join("identity.db"))
            .await
            .context("opening the identity database")?,
    );
    let identity = Arc::new(
        Identity::new(
            store.clone(),
            store.clone(),
            Passwords::owasp(),
            IdentityConfig {
                issuer: issuer.clone(),
                ..IdentityConfig::default()
            },
            Arc::new(AuthMetrics::new(&registry)?),
        )
        .await
        .context("starting the identity service")?,
    );
    // Configured service tokens first, then every identity credential.
    let verifier = Arc::new(Verifiers(vec![Arc::new(tokens), identity.clone()]));

    let events = args
        .events
        .build(&registry)
        .await
        .context("starting Buncast")?;
    // KV: the in-process engine (persisted in the data directory), unless
    // a Redis-protocol server is configured.
    let remote_kv = args.kv.remote_store()?;
    let local_kv = match remote_kv {
        Some(_) => None,
        None => Some(open_local_kv(&args.data_dir, &args.kv_appendfsync)?),
    };
    let kv_store: Arc<dyn KvStore> = match (remote_kv, &local_kv) {
        (Some(remote), _) => Arc::new(remote),
        (None, Some(local)) => Arc::new(MemoryKv::on(EngineRunner::new(
            local.engine.clone(),
            local.tx.clone(),
            Some(local.aof.clone()),
        ))),
        (None, None) => anyhow::bail!("no KV store"),
    };
    let kv = args.kv.build(kv_store, events.clone(), &registry)?;
    if let Some(local) = &local_kv {
        registry.register(Box::new(bunder::BunderCollector::new(
            local.engine.clone(),
            Some(local.aof.clone()),
        )))?;
    }
    // The engine's upkeep (expiry sweep, kv.aof) and its snapshot file
    // (SAVE / BGSAVE over the RESP port: a consistent copy to back up).
    let kv_config = local_kv.as_ref().map(|local| BunderConfig {
        aof: Some(local.aof.clone()),
        snapshots: Some(Arc::new(Snapshots::new(
            args.data_dir.join("kv.snapshot"),
            local.engine.clone(),
            local.tx.clone(),
        ))),
        ..BunderConfig::default()
    });
    let upkeep = local_kv
        .as_ref()
        .zip(kv_config.as_ref())
        .map(|(local, config)| {
            bunder::spawn_upkeep(local.engine.clone(), config, shutdown.token.clone())
        });
    let resp_address = match (&args.resp_listen, local_kv.as_ref().zip(kv_config)) {
        (Some(address), Some((local, config))) => {
            let password = resolve_secret(
                "BUNBASE_RESP_PASSWORD",
                args.resp_password.clone(),
                args.resp_password_file.as_deref(),
            )?;
            let resp = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for RESP on {address}"))?;
            let bound = resp.local_addr()?;
            // Like Redis's protected mode: every project's keys are on this
            // port, so beyond loopback it needs a password.
            anyhow::ensure!(
                bound.ip().is_loopback() || password.is_some(),
                "--resp-listen {address} is reachable from other machines: set BUNBASE_RESP_PASSWORD (or _FILE), or listen on 127.0.0.1"
            );
            tokio::spawn(bunder::serve_shared(
                resp,
                local.engine.clone(),
                BunderConfig {
                    password: password.map(|p| p.expose().to_string()),
                    ..config
                },
                local.tx.clone(),
                shutdown.token.clone(),
            ));
            Some(bound)
        }
        (Some(_), None) => {
            anyhow::bail!(
                "--resp-listen serves the in-process KV engine; it cannot be used with --kv-url"
            )
        }
        (None, _) => None,
    };

    // KMS: SQLite in the data directory; without a configured master key,
    // a development one is generated there (and the banner says so).
    let kms = args
        .kms
        .build(&args.data_dir, true, &registry)
        .await
        .context("starting BunKMS")?;
    let kms_scheduler = bunkms::spawn_scheduler(kms.kms.clone(), shutdown.token.clone());

    // Bundoc: SQLite in the data directory, its changes on the shared bus;
    // encrypted fields use the in-process KMS unless a remote one is set.
    let (docs_store, docs_store_kind) = args
        .docs
        .open_store(&args.data_dir)
        .await
        .context("opening the document store")?;
    let (docs_keys, docs_keys_kind): (Arc<dyn Keys>, _) = match args.docs.remote_keys()? {
        Some(remote) => (remote, "remote BunKMS"),
        None => (
            Arc::new(LocalKeys::new(kms.kms.clone(), "bundoc")),
            "in-process BunKMS",
        ),
    };
    let docs = args
        .docs
        .build(docs_store, events.clone(), Some(docs_keys), &registry)?;

    let mut platform = platform::service(PlatformState {
        identity: identity.clone(),
    });
    platform
        .health
        .push(kit::health_check_fn("identity-db", move || {
            let store = store.clone();
            async move { store.check().await }
        }));
    let services = vec![
        platform,
        bunkms::service(KmsState {
            kms: kms.kms.clone(),
            verifier: verifier.clone(),
        }),
        kvmanager::service(KvState {
            kv,
            verifier: verifier.clone(),
            keepalive: args.events.keepalive(),
        }),
        bundoc::service(DocsState {
            docs,
            verifier: verifier.clone(),
            keepalive: args.events.keepalive(),
            shutdown: shutdown.clone(),
            body_limit: args.docs.body_limit,
        }),
        buncast::service(BuncastState {
            events,
            verifier,
            keepalive: args.events.keepalive(),
            shutdown: shutdown.clone(),
        }),
    ];

    println!("BunBase all-in-one listening on http://{address}");
    println!("  data directory  {}", args.data_dir.display());
    println!(
        "  /api            Platform API: accounts, projects, keys, end users (issuer {issuer})"
    );
    println!(
        "  /events         Buncast pub/sub ({})",
        args.events.describe()
    );
    println!(
        "  /kv             Bunder Manager: per-project key-value store ({})",
        if local_kv.is_some() {
            "in-process engine, kv.aof"
        } else {
            "remote KV server"
        }
    );
    if let Some(bound) = resp_address {
        println!("  redis://{bound}  the same KV engine over RESP (Redis clients)");
    }
    println!(
        "  /kms            BunKMS: keys, encryption, signing, secrets, audit ({}, master key {})",
        kms.store,
        kms.kms.master_key_id()
    );
    println!(
        "  /bundoc         Bundoc: documents, queries, realtime ({docs_store_kind}, field encryption by {docs_keys_kind})"
    );
    println!("  /health         health of every service");
    println!("  /metrics        Prometheus metrics of every service");
    if kms.origin == bunbase_core::kms::master::Origin::Development {
        println!();
        println!(
            "  DEVELOPMENT master key in {}: anyone who can read it can read every key.",
            args.data_dir
                .join(bunbase_core::kms::master::DEV_FILE)
                .display()
        );
        println!("  For production set BUNKMS_MASTER_KEY_FILE (32 bytes: openssl rand -hex 32).");
    }
    if let Some((token, path)) = dev_note {
        println!();
        println!(
            "  No tokens configured: development token for project `demo` (stored in {}):",
            path.display()
        );
        println!("  {token}");
        println!("  Try: curl -X POST -H 'Authorization: Bearer {token}' \\");
        println!(
            "         -d '{{\"data\":{{\"hello\":\"world\"}}}}' http://{address}/events/v1/projects/demo/topics/greetings"
        );
    }
    kit::serve(
        listener,
        services,
        &registry,
        args.server.config(),
        shutdown.clone(),
    )
    .await?;
    shutdown.token.cancel();
    kms_scheduler.abort();
    if let Some(upkeep) = upkeep {
        upkeep.close();
        upkeep.wait().await; // the final fsync
    }
    println!("BunBase stopped");
    Ok(())
}
