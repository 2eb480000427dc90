//! In-process servers for tests and benchmarks: the real shell kit and the
//! real Buncast routes on a loopback port.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bunbase_core::auth::{
    Principal, PrincipalKind, Rights, StaticTokens, TokenVerifier, Verifiers,
};
use bunbase_core::docs::{Bundoc, DocStore, DocsLimits, DocsMetrics};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::adapters::bunder::BunderBus;
use bunbase_core::events::adapters::memory::MemoryBus;
use bunbase_core::events::{EventBus, EventLimits, EventMetrics, Events};
use bunbase_core::kv::{KvLimits, KvMetrics, KvStore};
use bunbase_core::metrics::Registry;
use bunbase_core::{Error, ProjectId};
use bunbase_shells::buncast::{self, BuncastState};
use bunbase_shells::bundoc::{self, DocsState};
use bunbase_shells::kit::{self, ServerConfig, Shutdown};
use bunbase_shells::kvmanager::{self, KvState};

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

/// Resolves [`ALPHA_ALICE`] and [`ALPHA_BOB`] as BunAuth resolves end
/// users' tokens, without running identity.
pub struct EndUsers;

#[async_trait::async_trait]
impl TokenVerifier for EndUsers {
    async fn verify(&self, token: &str, _project: &ProjectId) -> Result<Principal, Error> {
        let subject = match token {
            ALPHA_ALICE => "alice",
            ALPHA_BOB => "bob",
            _ => return Err(Error::Unauthenticated("invalid credential".into())),
        };
        Ok(Principal {
            subject: subject.into(),
            kind: PrincipalKind::EndUser,
            project: ProjectId::new("alpha")?,
            rights: Rights::NONE,
        })
    }
}

pub fn tokens() -> StaticTokens {
    StaticTokens::parse(&format!(
        "alpha:rwa:{ALPHA},alpha:r:{ALPHA_READER},beta:rwa:{BETA}"
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
    /// Where to listen; a free port when `None`.
    pub listen: Option<SocketAddr>,
    /// Also serve Bunder Manager (`/kv`) on this store, publishing through
    /// the same events.
    pub kv: Option<(Arc<dyn KvStore>, KvLimits)>,
    /// Also serve BunKMS (`/kms`).
    pub kms: Option<bunbase_core::kms::Kms>,
    /// Also serve Bundoc (`/bundoc`) on this store, publishing through the
    /// same events, with field encryption when `kms` is set, and accepting
    /// the end users' tokens too.
    pub docs: Option<(Arc<dyn DocStore>, DocsLimits)>,
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
            listen: None,
            kv: None,
            kms: None,
            docs: None,
        }
    }
}

/// A Buncast server running on the current tokio runtime.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub events: Events,
    pub shutdown: Shutdown,
    pub registry: Registry,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts Buncast with `options` on 127.0.0.1:0 in the current runtime.
pub async fn start(options: Options) -> RunningServer {
    let registry = Registry::new();
    let metrics = Arc::new(EventMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}")));
    let bus: Arc<dyn EventBus> = match &options.bus {
        Bus::Memory => Arc::new(MemoryBus::new(options.bus_config, metrics.clone())),
        Bus::Redis(url, prefix) => Arc::new(
            BunderBus::connect(url, prefix, options.bus_config, metrics.clone())
                .await
                .unwrap_or_else(|e| panic!("bus: {e}")),
        ),
    };
    let events = Events::new(bus, options.limits, metrics);
    let shutdown = Shutdown::new();
    let state = BuncastState {
        events: events.clone(),
        verifier: Arc::new(tokens()),
        keepalive: options.keepalive,
        shutdown: shutdown.clone(),
    };
    let mut services = vec![buncast::service(state)];
    if let Some(kms) = &options.kms {
        services.push(bunbase_shells::bunkms::service(
            bunbase_shells::bunkms::KmsState {
                kms: kms.clone(),
                verifier: Arc::new(tokens()),
            },
        ));
    }
    if let Some((store, limits)) = &options.kv {
        let metrics = Arc::new(KvMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}")));
        services.push(kvmanager::service(KvState {
            kv: bunbase_core::kv::Kv::new(store.clone(), events.clone(), *limits, metrics),
            verifier: Arc::new(tokens()),
            keepalive: options.keepalive,
        }));
    }
    if let Some((store, limits)) = &options.docs {
        let keys = options.kms.as_ref().map(|kms| {
            Arc::new(bunbase_core::kms::LocalKeys::new(kms.clone(), "bundoc"))
                as Arc<dyn bunbase_core::kms::Keys>
        });
        let metrics = Arc::new(DocsMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}")));
        services.push(bundoc::service(DocsState {
            docs: Bundoc::new(store.clone(), events.clone(), keys, *limits, metrics),
            verifier: Arc::new(Verifiers(vec![Arc::new(tokens()), Arc::new(EndUsers)])),
            keepalive: options.keepalive,
            shutdown: shutdown.clone(),
            body_limit: 8 * 1024 * 1024,
        }));
    }
    let address = options
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let handle = {
        let registry = registry.clone();
        let shutdown = shutdown.clone();
        let server = options.server;
        tokio::spawn(
            async move { kit::serve(listener, services, &registry, server, shutdown).await },
        )
    };
    RunningServer {
        addr,
        events,
        shutdown,
        registry,
        handle,
    }
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
    use bunbase_core::auth::adapters::memory::MemoryStore;
    use bunbase_core::auth::password::Passwords;
    use bunbase_core::auth::{AuthMetrics, Identity, IdentityConfig, Verifiers};
    use bunbase_shells::platform::{self, PlatformState};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{addr}");
    let registry = Registry::new();
    let store = Arc::new(MemoryStore::new());
    let identity = Arc::new(
        Identity::new(
            store.clone(),
            store,
            Passwords::with_params(256, 1, 1).unwrap_or_else(|e| panic!("{e}")),
            IdentityConfig {
                issuer: format!("{url}/api"),
                rate,
                ..IdentityConfig::default()
            },
            Arc::new(AuthMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}"))),
        )
        .await
        .unwrap_or_else(|e| panic!("identity: {e}")),
    );
    let metrics = Arc::new(EventMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}")));
    let events = Events::new(
        Arc::new(MemoryBus::new(BusConfig::default(), metrics.clone())),
        EventLimits::default(),
        metrics,
    );
    let shutdown = Shutdown::new();
    let services = vec![
        platform::service(PlatformState {
            identity: identity.clone(),
        }),
        buncast::service(BuncastState {
            events,
            verifier: Arc::new(Verifiers(vec![Arc::new(tokens()), identity.clone()])),
            keepalive: Duration::from_secs(15),
            shutdown: shutdown.clone(),
        }),
    ];
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            kit::serve(
                listener,
                services,
                &registry,
                ServerConfig::default(),
                shutdown,
            )
            .await
        });
    }
    PlatformServer {
        url,
        identity,
        shutdown,
    }
}
