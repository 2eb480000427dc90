//! `platform`: the Platform API (port 3001, prefix `/api`) — accounts,
//! projects, members, API keys, end users, JWKS — on Postgres or SQLite.

use std::path::PathBuf;

use anyhow::Context;
use bunbase_core::config::resolve_secret;
use bunbase_core::metrics::Registry;
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::identity::{self, IdentityOptions};
use bunbase_shells::kit::{self, Shutdown};
use bunbase_shells::platform::{self, PlatformState};
use clap::Parser;

/// BunBase Platform API: the public face of the identity service.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PLATFORM_LISTEN", default_value = "127.0.0.1:3001")]
    listen: String,
    /// Identity database: postgres://user[:password]@host/db, or sqlite://PATH.
    #[arg(long, env = "PLATFORM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// File holding the database URL (it may carry a password); must be chmod 600.
    #[arg(long, env = "PLATFORM_DATABASE_URL_FILE")]
    database_url_file: Option<PathBuf>,
    /// The platform's public URL; tokens are issued by <public-url>/api.
    #[arg(
        long,
        env = "PLATFORM_PUBLIC_URL",
        default_value = "http://127.0.0.1:3001"
    )]
    public_url: String,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "PLATFORM_ACCESS_TTL_SECS", default_value_t = 900)]
    access_ttl_secs: u64,
    /// Days between automatic signing-key rotations.
    #[arg(long, env = "PLATFORM_KEY_ROTATION_DAYS", default_value_t = 7)]
    key_rotation_days: u64,
    /// Redis-protocol cache for principal resolutions (e.g. redis://bunder-sys:6379);
    /// when it is down, resolution still works, only slower.
    #[arg(long, env = "PLATFORM_CACHE_URL", hide_env_values = true)]
    cache_url: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args = Args::parse();
    let url = resolve_secret(
        "PLATFORM_DATABASE_URL",
        args.database_url.clone(),
        args.database_url_file.as_deref(),
    )?
    .context("no database: set PLATFORM_DATABASE_URL (postgres://… or sqlite://PATH)")?;
    let registry = Registry::new();
    let (identity, store) = identity::build(
        IdentityOptions {
            database_url: &url,
            public_url: &args.public_url,
            access_ttl_secs: args.access_ttl_secs,
            key_rotation_days: args.key_rotation_days,
            cache_url: args.cache_url.as_deref(),
        },
        &registry,
    )
    .await
    .context("starting the identity service")?;
    let mut service = platform::service(PlatformState { identity });
    service
        .health
        .push(kit::health_check_fn("database", move || {
            let store = store.clone();
            async move { store.check().await }
        }));
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "platform serving /api");
    kit::serve(
        listener,
        vec![service],
        &registry,
        args.server.config(),
        shutdown,
    )
    .await?;
    tracing::info!("platform stopped");
    Ok(())
}
