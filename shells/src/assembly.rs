//! One assembly for every way BunBase runs: the all-in-one, each
//! standalone binary and the test harness build their services from the
//! same [`ServiceModule`]s, in one [`Host`].
//!
//! A module owns its service's configuration and knows how to start it:
//! open its stores, register its metrics, start its background tasks, and
//! hand back its routes and health checks. The host holds what services
//! share in one process: the metrics registry, the shutdown signal, the
//! data directory, the credentials, the event bus, and the services that
//! others use in-process (identity for credentials, BunKMS for Bundoc's
//! field keys). Adding a service is one core module, one shell module and
//! one line in the all-in-one's catalogue.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::response::IntoResponse;
use bunbase_core::Error;
use bunbase_core::auth::{Identity, TokenVerifier, Verifiers};
use bunbase_core::events::Events;
use bunbase_core::kms::Kms;
use bunbase_core::metrics::Registry;
use bunbase_core::platform::{DeletionFeed, ProjectData};
use tokio::net::TcpListener;

use crate::buncast::EventsSettings;
use crate::kit::{self, ApiError, ServerConfig, Shutdown};

/// What operators call a service and where its routes live.
#[derive(Debug)]
pub struct About {
    /// Its name in `--services` and in logs: its gateway prefix without
    /// the slash (`events`).
    pub name: &'static str,
    /// Other names operators know it by (`buncast`).
    pub aliases: &'static [&'static str],
    /// The gateway prefix its routes live under (`/events`).
    pub prefix: &'static str,
}

impl About {
    pub const fn new(
        name: &'static str,
        aliases: &'static [&'static str],
        prefix: &'static str,
    ) -> About {
        About {
            name,
            aliases,
            prefix,
        }
    }
}

/// A service as the assembly sees it.
#[async_trait]
pub trait ServiceModule: Send + Sync {
    /// Builds the service in `host`.
    async fn start(&self, host: &mut Host) -> Result<Started, Error>;

    fn about(&self) -> &'static About;

    fn name(&self) -> &'static str {
        self.about().name
    }
}

/// A started service.
pub struct Started {
    pub service: kit::Service,
    /// What it runs on, for the all-in-one's banner and the logs
    /// (`Buncast pub/sub (memory bus)`).
    pub summary: String,
    /// What an operator must know (a development master key): printed
    /// after the banner, logged as warnings by a standalone binary.
    pub warnings: Vec<String>,
}

impl Started {
    pub fn new(service: kit::Service, summary: impl Into<String>) -> Started {
        Started {
            service,
            summary: summary.into(),
            warnings: Vec::new(),
        }
    }
}

/// A background task's end: awaited after the server stops (the final
/// fsync of the KV log, the gRPC server's last calls).
pub type Finishing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the services of one process share.
pub struct Host {
    pub registry: Registry,
    pub shutdown: Shutdown,
    /// Where embedded stores keep their files.
    pub data_dir: PathBuf,
    /// The all-in-one's defaults (a development master key is generated
    /// when none is configured, the KV engine runs in-process).
    pub embedded: bool,
    credentials: Vec<Arc<dyn TokenVerifier>>,
    identity: Option<Arc<Identity>>,
    events_settings: EventsSettings,
    events: Option<Events>,
    kms: Option<Kms>,
    finishing: Vec<Finishing>,
    /// Without identity in this process: the services' data of each
    /// project, removed as BunAuth reports deletions.
    cascade: Vec<Arc<dyn ProjectData>>,
    /// BunAuth, when the credentials are resolved there.
    deletions: Option<Arc<dyn DeletionFeed>>,
    /// How often BunAuth is asked for deleted projects.
    pub deletion_poll: std::time::Duration,
    /// Services started in this process that later ones call in process
    /// (Functions calls Bundoc, KV and Storage), by type.
    provided: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl Host {
    pub fn new(data_dir: impl Into<PathBuf>) -> Host {
        Host {
            registry: Registry::new(),
            shutdown: Shutdown::new(),
            data_dir: data_dir.into(),
            embedded: false,
            credentials: Vec::new(),
            identity: None,
            events_settings: EventsSettings::default(),
            events: None,
            kms: None,
            finishing: Vec::new(),
            cascade: Vec::new(),
            deletions: None,
            deletion_poll: std::time::Duration::from_secs(10),
            provided: Vec::new(),
        }
    }

    /// Accepts these credentials too (service tokens, a remote BunAuth),
    /// checked in the order given.
    pub fn accept(&mut self, verifier: Arc<dyn TokenVerifier>) {
        self.credentials.push(verifier);
    }

    /// A standalone data service's credentials: its service tokens, then
    /// BunAuth (at least one; `env` names the variables to set).
    pub fn accept_credentials(
        &mut self,
        env: &str,
        credentials: &crate::cli::CredentialArgs,
    ) -> Result<(), Error> {
        let remote = credentials.remote()?;
        self.credentials
            .extend(credentials.verifiers(env, remote.clone())?);
        self.deletions = remote.map(|bunauth| bunauth as Arc<dyn DeletionFeed>);
        Ok(())
    }

    /// Where this process learns of deleted projects when identity runs
    /// elsewhere (BunAuth).
    pub fn follow_deletions_from(&mut self, feed: Arc<dyn DeletionFeed>) {
        self.deletions = Some(feed);
    }

    /// The credentials data services accept: the configured ones, then the
    /// in-process identity service's (accounts, end users, API keys).
    pub fn verifier(&self) -> Result<Arc<dyn TokenVerifier>, Error> {
        let mut all = self.credentials.clone();
        if let Some(identity) = &self.identity {
            all.push(identity.clone());
        }
        if all.is_empty() {
            return Err(Error::invalid(
                "no credentials configured: give service tokens or BunAuth's URL",
            ));
        }
        Ok(Arc::new(Verifiers(all)))
    }

    /// The state of a data service's handlers: `service`, the credentials
    /// of [`Host::verifier`], the bus's keep-alive, the shutdown signal.
    pub fn shell<S>(&self, service: S) -> Result<kit::ShellState<S>, Error> {
        Ok(kit::ShellState {
            service,
            verifier: self.verifier()?,
            keepalive: self.events_settings.keepalive,
            recheck: self.events_settings.recheck,
            shutdown: self.shutdown.clone(),
        })
    }

    pub fn provide_identity(&mut self, identity: Arc<Identity>) {
        self.identity = Some(identity);
    }

    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
    }

    /// The bus this process's services publish to, used once it exists.
    pub fn set_events(&mut self, settings: EventsSettings) {
        self.events_settings = settings;
    }

    pub fn events_settings(&self) -> &EventsSettings {
        &self.events_settings
    }

    /// The shared event bus, started on first use. Shutdown ends its
    /// subscriptions, so every open stream closes with `shutdown`.
    pub async fn events(&mut self) -> Result<Events, Error> {
        if let Some(events) = &self.events {
            return Ok(events.clone());
        }
        let events = self.events_settings.build(&self.registry).await?;
        self.events = Some(events.clone());
        self.purge_on_project_deletion(Arc::new(events.clone()));
        Ok(events)
    }

    /// Deleting a project removes `data` of it: at once when identity runs
    /// in this process, else when BunAuth reports the deletion.
    pub fn purge_on_project_deletion(&mut self, data: Arc<dyn ProjectData>) {
        match &self.identity {
            Some(identity) => identity.on_project_deleted(data),
            None => self.cascade.push(data),
        }
    }

    pub fn provide_kms(&mut self, kms: Kms) {
        self.kms = Some(kms);
    }

    /// The in-process BunKMS, when this process runs it.
    pub fn kms(&self) -> Option<&Kms> {
        self.kms.as_ref()
    }

    /// Offers a started service to the modules started after it.
    pub fn provide<T: Clone + Send + Sync + 'static>(&mut self, service: T) {
        self.provided.retain(|p| !p.is::<T>());
        self.provided.push(Box::new(service));
    }

    /// A service an earlier module offered, if this process runs it.
    pub fn provided<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.provided
            .iter()
            .find_map(|p| p.downcast_ref::<T>().cloned())
    }

    /// Awaits `task` after the server stops (it should end on the host's
    /// shutdown signal).
    pub fn finish_with(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.finishing.push(Box::pin(task));
    }
}

/// The started services of one server.
pub struct Assembly {
    pub services: Vec<kit::Service>,
    /// `(prefix, summary)` of each started service, in start order.
    pub summaries: Vec<(&'static str, String)>,
    pub warnings: Vec<String>,
    /// Modules not enabled: their prefixes answer 404 saying so.
    pub disabled: Vec<(&'static str, &'static str)>,
}

/// Starts `enabled` modules in order (a module may use what an earlier
/// one provides), and notes the others as disabled.
pub async fn assemble(
    host: &mut Host,
    modules: &[&dyn ServiceModule],
    enabled: &dyn Fn(&dyn ServiceModule) -> bool,
) -> Result<Assembly, Error> {
    let mut assembly = Assembly {
        services: Vec::new(),
        summaries: Vec::new(),
        warnings: Vec::new(),
        disabled: Vec::new(),
    };
    for module in modules {
        if !enabled(*module) {
            assembly
                .disabled
                .push((module.name(), module.about().prefix));
            continue;
        }
        let started = module
            .start(host)
            .await
            .map_err(|e| e.context(format_args!("starting {}", module.name())))?;
        assembly
            .summaries
            .push((module.about().prefix, started.summary));
        assembly.warnings.extend(started.warnings);
        assembly.services.push(started.service);
    }
    if let Some(events) = &host.events {
        // Ending the bus's subscriptions ends every open stream (Buncast
        // subscriptions, change streams, realtime queries) with `closed`.
        let events = events.clone();
        assembly.services.push(kit::Service {
            name: "event-bus".into(),
            router: Router::new(),
            untimed: None,
            health: Vec::new(),
            on_shutdown: Some(Arc::new(move || events.shut_down())),
        });
    }
    if !assembly.disabled.is_empty() {
        assembly.services.push(disabled_service(&assembly.disabled));
    }
    if let Some(feed) = host.deletions.clone()
        && !host.cascade.is_empty()
    {
        let follower = tokio::spawn(bunbase_core::platform::follow_deletions(
            feed,
            host.cascade.clone(),
            host.deletion_poll,
            host.shutdown.token.clone(),
        ));
        host.finish_with(async move {
            let _ = follower.await;
        });
    }
    Ok(assembly)
}

/// Answers every route under the disabled services' prefixes with a 404
/// that says why.
fn disabled_service(disabled: &[(&'static str, &'static str)]) -> kit::Service {
    let mut router = Router::new();
    for &(name, prefix) in disabled {
        let answer = move || async move {
            ApiError(Error::NotFound(format!(
                "the {name} service is not enabled on this server (see --services / BUNBASE_SERVICES)"
            )))
            .into_response()
        };
        router = router
            .route(prefix, axum::routing::any(answer))
            .route(&format!("{prefix}/{{*rest}}"), axum::routing::any(answer));
    }
    kit::Service {
        name: "disabled".into(),
        router,
        untimed: None,
        health: Vec::new(),
        on_shutdown: None,
    }
}

impl Assembly {
    /// The application router, for in-process calls (tests) or
    /// [`serve_app`].
    pub fn app(&self, host: &Host, config: &ServerConfig) -> Result<Router, Error> {
        kit::app(&self.services, &host.registry, config)
    }

    /// What its services do when shutdown starts (end open streams).
    pub fn shutdown_hooks(&self) -> Vec<kit::ShutdownHook> {
        kit::shutdown_hooks(&self.services)
    }
}

/// Serves `assembly` on `listener` until the host's shutdown fires, then
/// lets the background tasks finish.
pub async fn serve(
    listener: TcpListener,
    assembly: Assembly,
    host: Host,
    config: ServerConfig,
) -> std::io::Result<()> {
    let app = assembly
        .app(&host, &config)
        .map_err(std::io::Error::other)?;
    let hooks = assembly.shutdown_hooks();
    serve_app(listener, app, hooks, host, config).await
}

/// Serves `app` (built by [`Assembly::app`]; a test keeps a clone to call
/// in process) like [`serve`].
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    hooks: Vec<kit::ShutdownHook>,
    mut host: Host,
    config: ServerConfig,
) -> std::io::Result<()> {
    let served = kit::serve_app(listener, app, hooks, config, host.shutdown.clone()).await;
    host.shutdown.trigger();
    for task in host.finishing.drain(..) {
        task.await;
    }
    served
}
