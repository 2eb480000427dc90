//! Test servers for tests and benchmarks: the services assembled from the
//! same modules as the binaries, on a loopback port or in process.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bunbase_core::auth::adapters::memory::MemoryStore;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::{
    IdentityConfig, Principal, PrincipalKind, Rights, StaticTokens, TokenVerifier,
};
use bunbase_core::config::Secret;
use bunbase_core::docs::{DocStore, DocsLimits};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::{EventLimits, Events};
use bunbase_core::kv::{KvLimits, KvStore};
use bunbase_core::metrics::Registry;
use bunbase_core::{Error, ProjectId};
use bunbase_shells::assembly::{self, Assembly, Host, ServiceModule};
use bunbase_shells::buncast::{BuncastModule, BusChoice, EventsSettings};
use bunbase_shells::bundoc::DocsModule;
use bunbase_shells::bunkms::KmsModule;
use bunbase_shells::functions::FunctionsModule;
use bunbase_shells::identity::{IdentityModule, IdentitySource, PlatformModule};
use bunbase_shells::kit::{ServerConfig, Shutdown};
use bunbase_shells::kvmanager::KvModule;
use bunbase_shells::storage::StorageModule;

use crate::scenario::InProcess;

/// Full rights in project `alpha`.
pub const ALPHA: &str = "alpha-token-000000000000000001";
/// Read-only in project `alpha`.
pub const ALPHA_READER: &str = "alpha-reader-0000000000000002";
/// Full rights in project `beta`.
pub const BETA: &str = "beta-token-0000000000000000003";

/// End users `alice` and `bob` of project `alpha` (no data rights: the
/// collections' rules decide), for services that apply rules.
pub const ALPHA_ALICE: &str = "alpha-end-user-alice-000000004";
pub const ALPHA_BOB: &str = "alpha-end-user-bob-00000000005";
/// Project alpha's publishable key: no user, no data rights.
pub const ALPHA_PUBLISHABLE: &str = "alpha-publishable-key-00000006";
/// A platform token (`*:rw:`): reads and writes in every project, as the
/// platform's own services call each other (functions' remote bindings).
pub const PLATFORM: &str = "platform-token-000000000000007";

/// Resolves [`ALPHA_ALICE`], [`ALPHA_BOB`] and [`ALPHA_PUBLISHABLE`] as
/// BunAuth resolves end users' tokens and publishable keys, without
/// running identity.
pub struct EndUsers;

#[async_trait::async_trait]
impl TokenVerifier for EndUsers {
    async fn verify(&self, token: &str, _project: &ProjectId) -> Result<Principal, Error> {
        let (subject, kind) = match token {
            ALPHA_ALICE => ("alice", PrincipalKind::EndUser),
            ALPHA_BOB => ("bob", PrincipalKind::EndUser),
            ALPHA_PUBLISHABLE => ("key_web", PrincipalKind::PublishableKey),
            _ => return Err(Error::Unauthenticated("invalid credential".into())),
        };
        Ok(Principal {
            subject: subject.into(),
            kind,
            project: ProjectId::new("alpha")?,
            rights: Rights::NONE,
        })
    }
}

pub fn tokens() -> StaticTokens {
    StaticTokens::parse(&format!(
        "alpha:rwa:{ALPHA},alpha:r:{ALPHA_READER},beta:rwa:{BETA},*:rw:{PLATFORM}"
    ))
    .unwrap_or_else(|e| panic!("test tokens: {e}"))
}

/// Which bus a test server uses.
#[derive(Clone)]
pub enum Bus {
    Memory,
    /// A Redis-protocol server URL and key prefix.
    Redis(String, String),
}

#[derive(Clone)]
pub struct Options {
    pub bus: Bus,
    pub bus_config: BusConfig,
    pub limits: EventLimits,
    pub server: ServerConfig,
    pub keepalive: Duration,
    /// Between checks of an open stream's credential.
    pub recheck: Duration,
    /// Where to listen; a free port when `None`.
    pub listen: Option<SocketAddr>,
    /// Also serve Bunder Manager (`/kv`) on this store, publishing through
    /// the same events.
    pub kv: Option<(Arc<dyn KvStore>, KvLimits)>,
    /// Also serve BunKMS (`/kms`).
    pub kms: Option<bunbase_core::kms::Kms>,
    /// Also serve Bundoc (`/bundoc`) on this store, publishing through the
    /// same events, with field encryption when `kms` is set.
    pub docs: Option<(Arc<dyn DocStore>, DocsLimits)>,
    /// Also serve Storage (`/storage`).
    pub storage: Option<bunbase_core::storage::Storage>,
    /// Also serve Functions (`/functions`), calling the services above.
    pub functions: Option<bunbase_shells::functions::FunctionsArgs>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bus: Bus::Memory,
            bus_config: BusConfig::default(),
            limits: EventLimits::default(),
            server: ServerConfig {
                body_limit: 256 * 1024,
                ..ServerConfig::default()
            },
            keepalive: Duration::from_secs(15),
            recheck: Duration::from_secs(10),
            listen: None,
            kv: None,
            kms: None,
            docs: None,
            storage: None,
            functions: None,
        }
    }
}

/// The services `options` name (Buncast always), assembled from the same
/// modules as the binaries, accepting the test tokens and the end users.
pub async fn assemble(options: &Options) -> (Host, Assembly) {
    let mut host = Host::new(std::env::temp_dir());
    host.accept(Arc::new(tokens()));
    host.accept(Arc::new(EndUsers));
    host.set_events(EventsSettings {
        bus: match &options.bus {
            Bus::Memory => BusChoice::Memory,
            Bus::Redis(url, prefix) => BusChoice::Redis {
                url: Secret::new(url.clone()),
                key_prefix: prefix.clone(),
            },
        },
        config: options.bus_config,
        limits: options.limits,
        keepalive: options.keepalive,
        recheck: options.recheck,
    });
    let mut modules: Vec<Box<dyn ServiceModule>> = Vec::new();
    if let Some(kms) = &options.kms {
        modules.push(Box::new(KmsModule::Given(kms.clone())));
    }
    modules.push(Box::new(BuncastModule));
    if let Some((store, limits)) = &options.kv {
        modules.push(Box::new(KvModule::on(store.clone(), *limits)));
    }
    if let Some((store, limits)) = &options.docs {
        modules.push(Box::new(DocsModule::on(store.clone(), *limits)));
    }
    if let Some(storage) = &options.storage {
        modules.push(Box::new(StorageModule::Given(storage.clone())));
    }
    if let Some(functions) = &options.functions {
        modules.push(Box::new(FunctionsModule(functions.clone())));
    }
    let modules: Vec<&dyn ServiceModule> = modules.iter().map(AsRef::as_ref).collect();
    let assembly = assembly::assemble(&mut host, &modules, &|_| true)
        .await
        .unwrap_or_else(|e| panic!("assembling the test server: {e}"));
    (host, assembly)
}

/// A test server running on the current tokio runtime.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub events: Events,
    pub shutdown: Shutdown,
    pub registry: Registry,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The functions service, when it runs (tests fire its schedules).
    pub functions: Option<Arc<bunbase_core::functions::Functions>>,
    router: axum::Router,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The same server's router, called in process (streams go through
    /// the socket).
    pub fn app(&self) -> InProcess {
        InProcess::new(self.router.clone())
    }
}

/// Starts the services `options` name on 127.0.0.1:0 (or `listen`) in the
/// current runtime.
pub async fn start(options: Options) -> RunningServer {
    let (mut host, assembly) = assemble(&options).await;
    let events = host
        .events()
        .await
        .unwrap_or_else(|e| panic!("events: {e}"));
    let address = options
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (shutdown, registry) = (host.shutdown.clone(), host.registry.clone());
    let functions = host.provided::<Arc<bunbase_core::functions::Functions>>();
    let router = assembly
        .app(&host, &options.server)
        .unwrap_or_else(|e| panic!("router: {e}"));
    let handle = tokio::spawn(assembly::serve_app(
        listener,
        router.clone(),
        assembly.shutdown_hooks(),
        host,
        options.server,
    ));
    RunningServer {
        addr,
        events,
        shutdown,
        registry,
        handle,
        functions,
        router,
    }
}

/// The same services in process, without a socket: requests go straight
/// to the application router (what the scenario runner drives).
pub struct App {
    pub router: axum::Router,
    pub events: Events,
    pub shutdown: Shutdown,
    pub registry: Registry,
}

pub async fn in_process(options: Options) -> App {
    let (mut host, assembly) = assemble(&options).await;
    let events = host
        .events()
        .await
        .unwrap_or_else(|e| panic!("events: {e}"));
    let router = assembly
        .app(&host, &options.server)
        .unwrap_or_else(|e| panic!("router: {e}"));
    App {
        router,
        events,
        shutdown: host.shutdown.clone(),
        registry: host.registry.clone(),
    }
}

/// Serves `modules` as a standalone binary does, accepting `verifier`'s
/// credentials, on 127.0.0.1:0 in the current runtime (the benchmarks'
/// servers): its URL, and what stops it.
pub async fn serve_modules(
    modules: &[&dyn ServiceModule],
    verifier: Arc<dyn TokenVerifier>,
) -> Result<(String, Shutdown), Error> {
    let mut host = Host::new(std::env::temp_dir());
    host.accept(verifier);
    let assembly = assembly::assemble(&mut host, modules, &|_| true).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::unavailable)?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(Error::unavailable)?
    );
    let shutdown = host.shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = assembly::serve(listener, assembly, host, ServerConfig::default()).await {
            eprintln!("the server stopped: {e}");
        }
    });
    Ok((url, shutdown))
}

/// One default server shared by every test of this process, on a runtime of
/// its own (each `#[tokio::test]` has a runtime that ends with the test).
pub fn shared() -> &'static SharedServer {
    static SHARED: OnceLock<SharedServer> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("shared-buncast".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("runtime: {e}"));
                runtime.block_on(async move {
                    let server = start(Options::default()).await;
                    let _ = tx.send(SharedServer {
                        url: server.url(),
                        events: server.events.clone(),
                    });
                    let _ = server.handle.await;
                });
            })
            .unwrap_or_else(|e| panic!("thread: {e}"));
        rx.recv()
            .unwrap_or_else(|e| panic!("shared server did not start: {e}"))
    })
}

pub struct SharedServer {
    pub url: String,
    pub events: Events,
}

/// The Platform API and Buncast together, as the all-in-one serves them,
/// on an in-memory identity store with cheap password hashing.
pub struct PlatformServer {
    pub url: String,
    pub identity: Arc<bunbase_core::auth::Identity>,
    pub shutdown: Shutdown,
}

pub async fn start_platform(rate: bunbase_core::auth::ratelimit::Rate) -> PlatformServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let url = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (host, assembly) = assemble_platform(&url, rate).await;
    let identity = host
        .identity()
        .cloned()
        .unwrap_or_else(|| panic!("the platform runs identity"));
    let shutdown = host.shutdown.clone();
    tokio::spawn(assembly::serve(
        listener,
        assembly,
        host,
        ServerConfig::default(),
    ));
    PlatformServer {
        url,
        identity,
        shutdown,
    }
}

/// The platform of [`start_platform`] in process: the URL its tokens name,
/// and its router.
pub async fn platform_in_process(rate: bunbase_core::auth::ratelimit::Rate) -> (String, InProcess) {
    let url = "http://platform.test".to_string();
    let (host, assembly) = assemble_platform(&url, rate).await;
    let router = assembly
        .app(&host, &ServerConfig::default())
        .unwrap_or_else(|e| panic!("router: {e}"));
    (url, InProcess::new(router))
}

/// Identity on `store`, issuing tokens as `url`/api, with cheap password
/// hashing.
fn test_identity(
    url: &str,
    rate: bunbase_core::auth::ratelimit::Rate,
    store: Arc<MemoryStore>,
) -> IdentityModule {
    IdentityModule {
        store: IdentitySource::Given(store),
        passwords: Passwords::with_params(256, 1, 1).unwrap_or_else(|e| panic!("{e}")),
        config: IdentityConfig {
            issuer: format!("{url}/api"),
            rate,
            ..IdentityConfig::default()
        },
        cache_url: None,
    }
}

/// Identity (issuing tokens as `url`/api) and Buncast on one host, as the
/// all-in-one assembles them.
pub async fn assemble_platform(
    url: &str,
    rate: bunbase_core::auth::ratelimit::Rate,
) -> (Host, Assembly) {
    let identity = test_identity(url, rate, Arc::new(MemoryStore::new()));
    let mut host = Host::new(std::env::temp_dir());
    host.accept(Arc::new(tokens()));
    // Streams check their credential every second (10 s in production),
    // so tests of revocation finish quickly.
    host.set_events(EventsSettings {
        recheck: Duration::from_secs(1),
        ..EventsSettings::default()
    });
    let modules: [&dyn ServiceModule; 2] = [&PlatformModule(identity), &BuncastModule];
    let assembly = assembly::assemble(&mut host, &modules, &|_| true)
        .await
        .unwrap_or_else(|e| panic!("assembling the platform: {e}"));
    (host, assembly)
}

/// The whole platform in process, assembled as the all-in-one assembles
/// it: identity (on an in-memory store with cheap password hashing,
/// issuing tokens as `url`/api) first, then BunKMS, Buncast, Bunder
/// Manager, Bundoc, Storage and Functions (calling the services before it,
/// its stores in memory), every data service accepting identity's
/// credentials and nothing else (no service tokens).
pub struct WholePlatform {
    /// The public URL tokens name as their issuer.
    pub url: String,
    pub app: InProcess,
    /// The same router, to serve on a socket (WebSocket upgrades).
    pub router: axum::Router,
    pub identity: Arc<bunbase_core::auth::Identity>,
    /// Identity's store (its signing keys sign tokens a test forges).
    pub identity_store: Arc<MemoryStore>,
    pub events: Events,
    pub shutdown: Shutdown,
    /// The names of the services assembled, in start order.
    pub services: Vec<String>,
    /// The gateway prefixes of the modules assembled (`/kv`…).
    pub prefixes: Vec<&'static str>,
}

pub async fn whole_platform_in_process(rate: bunbase_core::auth::ratelimit::Rate) -> WholePlatform {
    use bunbase_core::kms::adapters::memory::MemoryKms;
    use bunbase_core::kms::master::MasterKey;
    use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics};
    use bunbase_core::kv::adapters::memory::MemoryKv;
    use bunbase_core::kv::{Engine, EngineConfig};
    use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
    use bunbase_core::storage::{Storage, StorageLimits, StorageMetrics, StorageSecret};

    let url = "http://platform.test".to_string();
    let identity_store = Arc::new(MemoryStore::new());
    let identity = test_identity(&url, rate, identity_store.clone());
    let kms = Kms::new(
        Arc::new(MemoryKms::new()),
        Arc::new(MasterKey::parse(&"42".repeat(32)).unwrap_or_else(|e| panic!("{e}"))),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    );
    let kv = KvModule::on(
        Arc::new(MemoryKv::new(Arc::new(
            Engine::new(EngineConfig::default()),
        ))),
        KvLimits::default(),
    );
    let docs = DocsModule::on(
        Arc::new(bunbase_core::docs::adapters::MemoryDocStore::new()),
        DocsLimits::default(),
    );
    let mut host = Host::new(std::env::temp_dir());
    let storage = StorageModule::Given(Storage::new(
        Arc::new(MemoryMeta::new()),
        Arc::new(MemoryBlobs::new()),
        StorageLimits::default(),
        StorageMetrics::new(&host.registry).unwrap_or_else(|e| panic!("{e}")),
        StorageSecret::new(&[5; 32]),
    ));
    let functions = FunctionsModule(bunbase_shells::functions::FunctionsArgs {
        functions_database_url: Some("memory".into()),
        functions_bundles_url: Some("memory".into()),
        ..bunbase_shells::functions::FunctionsArgs::defaults()
    });
    let platform = PlatformModule(identity);
    let kms = KmsModule::Given(kms);
    let modules: [&dyn ServiceModule; 7] = [
        &platform,
        &kms,
        &BuncastModule,
        &kv,
        &docs,
        &storage,
        &functions,
    ];
    let assembly = assembly::assemble(&mut host, &modules, &|_| true)
        .await
        .unwrap_or_else(|e| panic!("assembling the platform: {e}"));
    let events = host
        .events()
        .await
        .unwrap_or_else(|e| panic!("events: {e}"));
    let router = assembly
        .app(&host, &ServerConfig::default())
        .unwrap_or_else(|e| panic!("router: {e}"));
    WholePlatform {
        url,
        app: InProcess::new(router.clone()),
        router,
        identity: host
            .identity()
            .cloned()
            .unwrap_or_else(|| panic!("the platform runs identity")),
        identity_store,
        events,
        shutdown: host.shutdown.clone(),
        services: assembly.services.iter().map(|s| s.name.clone()).collect(),
        prefixes: assembly
            .summaries
            .iter()
            .map(|(prefix, _)| *prefix)
            .collect(),
    }
}
