//! The identity service in an assembly: the Platform API under `/api` (in
//! `platform` and the all-in-one) and BunAuth over gRPC (in `bun-auth`)
//! run the same service on the same database. In one process it also
//! resolves the other services' credentials.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bunbase_core::Error;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::{
    AccountPolicy, AuthMetrics, Identity, IdentityConfig, IdentityStore, SignUp,
};
use bunbase_core::cache::RedisCache;
use bunbase_core::config::{StoreUrl, resolve_secret};

use crate::assembly::{About, Host, ServiceModule, Started};
use crate::kit;
use crate::platform;

/// The identity options of `platform` and `bun-auth` (environment names
/// carry each binary's prefix: `PLATFORM_DATABASE_URL`,
/// `BUNAUTH_DATABASE_URL`, …).
#[derive(clap::Args, Debug, Clone)]
pub struct IdentityArgs {
    /// Identity database: postgres://user[:password]@host/db, or sqlite://PATH.
    #[arg(long, hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the database URL (it may carry a password); must be chmod 600.
    #[arg(long)]
    pub database_url_file: Option<PathBuf>,
    /// The platform's public URL; tokens are issued by <public-url>/api (the
    /// same value in the platform and bun-auth).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    pub public_url: String,
    /// Access-token lifetime in seconds (the same value in the platform and bun-auth).
    #[arg(long, default_value_t = 900)]
    pub access_ttl_secs: u64,
    /// Days between automatic signing-key rotations.
    #[arg(long, default_value_t = 7)]
    pub key_rotation_days: u64,
    /// Redis-protocol cache for principal resolutions (e.g. redis://bunder-sys:6379);
    /// when it is down, resolution still works, only slower.
    #[arg(long, hide_env_values = true)]
    pub cache_url: Option<String>,
    #[command(flatten)]
    pub accounts: AccountArgs,
}

/// Who may make an account and how many projects one may own (the
/// platform's and the all-in-one's options).
#[derive(clap::Args, Debug, Clone)]
pub struct AccountArgs {
    /// `open`: anyone may sign up for an account; `closed`: only the first
    /// account (the instance's administrator) may.
    #[arg(long, value_enum, default_value_t = SignUpArg::Open)]
    pub signup: SignUpArg,
    /// Projects an account may own at once (0 = no limit); the instance's
    /// administrator (the first account) has no limit.
    #[arg(long, default_value_t = 10)]
    pub max_projects_per_account: u32,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpArg {
    Open,
    Closed,
}

impl AccountArgs {
    pub fn policy(&self) -> AccountPolicy {
        AccountPolicy {
            sign_up: match self.signup {
                SignUpArg::Open => SignUp::Open,
                SignUpArg::Closed => SignUp::Closed,
            },
            max_projects: self.max_projects_per_account,
        }
    }
}

/// The ids of [`IdentityArgs`]' options, for their environment prefix.
pub const IDENTITY_ARG_IDS: &[&str] = &[
    "database_url",
    "database_url_file",
    "public_url",
    "access_ttl_secs",
    "key_rotation_days",
    "cache_url",
    "signup",
    "max_projects_per_account",
];

impl IdentityArgs {
    /// `env` is the binary's prefix, for the error naming what to set.
    pub fn identity(&self, env: &str) -> Result<IdentityModule, Error> {
        let url = resolve_secret(
            &format!("{env}_DATABASE_URL"),
            self.database_url.clone(),
            self.database_url_file.as_deref(),
        )?
        .ok_or_else(|| {
            Error::invalid(format!(
                "no database: set {env}_DATABASE_URL (postgres://… or sqlite://PATH)"
            ))
        })?;
        Ok(IdentityModule {
            store: IdentitySource::Url(StoreUrl::parse(url.expose())?),
            passwords: Passwords::owasp(),
            config: IdentityConfig {
                issuer: issuer(&self.public_url),
                access_ttl: Duration::from_secs(self.access_ttl_secs.clamp(60, 24 * 3600)),
                key_rotation: Duration::from_secs(self.key_rotation_days.max(1) * 24 * 3600),
                accounts: self.accounts.policy(),
                ..IdentityConfig::default()
            },
            cache_url: self.cache_url.clone(),
        })
    }
}

/// The token issuer of a platform at `public_url`.
pub fn issuer(public_url: &str) -> String {
    format!("{}/api", public_url.trim_end_matches('/'))
}

pub enum IdentitySource {
    Url(StoreUrl),
    Given(Arc<dyn IdentityStore>),
}

/// The identity service: accounts, projects, keys, end users, tokens.
pub struct IdentityModule {
    pub store: IdentitySource,
    pub passwords: Passwords,
    pub config: IdentityConfig,
    pub cache_url: Option<String>,
}

impl IdentityModule {
    /// Opens the store (migrating it), starts the service and offers it to
    /// the host's other services as a credential resolver; the store is
    /// returned for health checks.
    pub async fn start_identity(
        &self,
        host: &mut Host,
    ) -> Result<(Arc<Identity>, Arc<dyn IdentityStore>), Error> {
        let store = match &self.store {
            IdentitySource::Url(url) => bunbase_core::auth::adapters::open(url).await?,
            IdentitySource::Given(store) => store.clone(),
        };
        let identity = Identity::new(
            store.clone(),
            store.clone(),
            self.passwords.clone(),
            self.config.clone(),
            Arc::new(AuthMetrics::new(&host.registry)?),
        )
        .await?;
        let identity = match &self.cache_url {
            Some(url) => identity.with_cache(Arc::new(RedisCache::new(
                url,
                "bunbase",
                Duration::from_millis(250),
            )?)),
            None => identity,
        };
        let identity = Arc::new(identity);
        host.provide_identity(identity.clone());
        Ok((identity, store))
    }
}

/// The Platform API (`/api`) on the identity service.
pub struct PlatformModule(pub IdentityModule);

static PLATFORM: About = About::new("api", &["platform", "identity"], "/api");

#[async_trait]
impl ServiceModule for PlatformModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let (identity, store) = self.0.start_identity(host).await?;
        let service = kit::Service::new("platform", platform::router(platform::state(identity)))
            .check(
                "identity-db",
                store,
                |store| async move { store.check().await },
            );
        let summary = format!(
            "Platform API: accounts, projects, keys, end users (issuer {})",
            self.0.config.issuer
        );
        Ok(Started::new(service, summary))
    }

    fn about(&self) -> &'static About {
        &PLATFORM
    }
}

/// BunAuth: the identity service over gRPC on its own listener, for the
/// other services of a deployment; `/health` and `/metrics` on the host's
/// HTTP port.
pub struct BunAuthModule {
    pub identity: IdentityModule,
    pub grpc_listen: String,
}

static BUN_AUTH: About = About::new("bun-auth", &[], "/bunauth.v1.BunAuth");

#[async_trait]
impl ServiceModule for BunAuthModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let (identity, store) = self.identity.start_identity(host).await?;
        let listener = tokio::net::TcpListener::bind(&self.grpc_listen)
            .await
            .map_err(|e| Error::invalid(format!("cannot listen on {}: {e}", self.grpc_listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("gRPC listener: {e}")))?;
        let (registry, shutdown) = (host.registry.clone(), host.shutdown.clone());
        let server = tokio::spawn(async move {
            let served =
                crate::bunauth::serve_grpc(listener, identity, &registry, shutdown.clone()).await;
            if let Err(e) = served {
                // Without its gRPC server the process is of no use: stop.
                tracing::error!(error = %e, "gRPC server failed");
                shutdown.trigger();
            }
        });
        host.finish_with(async move {
            let _ = server.await;
        });
        let service = kit::Service::new("bun-auth", axum::Router::new()).check(
            "identity-db",
            store,
            |store| async move { store.check().await },
        );
        Ok(Started::new(service, format!("BunAuth gRPC on {address}")))
    }

    fn about(&self) -> &'static About {
        &BUN_AUTH
    }
}

crate::standalone! {
    /// BunBase Platform API: the public face of the identity service.
    PlatformArgs: "platform", "PLATFORM", "127.0.0.1:3001",
    { #[command(flatten)] identity: IdentityArgs },
    prepare(args, _host) {
        Ok(vec![Box::new(PlatformModule(args.identity.identity("PLATFORM")?))])
    }
}

crate::standalone! {
    /// BunAuth: resolves every credential of the platform to a principal
    /// (`--listen` is the gRPC address).
    BunAuthArgs: "bun-auth", "BUNAUTH", "127.0.0.1:50051",
    {
        /// HTTP address for /health and /metrics.
        #[arg(long, default_value = "127.0.0.1:50052")] http_listen: String,
        #[command(flatten)] identity: IdentityArgs,
    },
    prepare(args, _host) {
        let identity = args.identity.identity("BUNAUTH")?;
        let grpc_listen = args.common.listen.clone();
        Ok(vec![Box::new(BunAuthModule { identity, grpc_listen })])
    },
    http_listen(args) => &args.http_listen
}
