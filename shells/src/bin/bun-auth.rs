//! `bun-auth`: the identity authority over gRPC (port 50051, internal),
//! with `/health` and `/metrics` on a small HTTP port.

use std::path::PathBuf;

use anyhow::Context;
use bunbase_core::config::resolve_secret;
use bunbase_core::metrics::Registry;
use bunbase_shells::bunauth;
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::identity::{self, IdentityOptions};
use bunbase_shells::kit::{self, Shutdown};
use clap::Parser;

/// BunAuth: resolves every credential of the platform to a principal.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// gRPC address.
    #[arg(long, env = "BUNAUTH_LISTEN", default_value = "127.0.0.1:50051")]
    listen: String,
    /// HTTP address for /health and /metrics.
    #[arg(long, env = "BUNAUTH_HTTP_LISTEN", default_value = "127.0.0.1:50052")]
    http_listen: String,
    /// Identity database: postgres://user[:password]@host/db, or sqlite://PATH.
    #[arg(long, env = "BUNAUTH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// File holding the database URL; must be chmod 600.
    #[arg(long, env = "BUNAUTH_DATABASE_URL_FILE")]
    database_url_file: Option<PathBuf>,
    /// The platform's public URL (tokens are issued by <public-url>/api; the
    /// same value as the platform's).
    #[arg(
        long,
        env = "BUNAUTH_PUBLIC_URL",
        default_value = "http://127.0.0.1:3001"
    )]
    public_url: String,
    /// Access-token lifetime in seconds (the same value as the platform's).
    #[arg(long, env = "BUNAUTH_ACCESS_TTL_SECS", default_value_t = 900)]
    access_ttl_secs: u64,
    /// Days between automatic signing-key rotations (the same as the platform's).
    #[arg(long, env = "BUNAUTH_KEY_ROTATION_DAYS", default_value_t = 7)]
    key_rotation_days: u64,
    /// Redis-protocol cache for principal resolutions (e.g. redis://bunder-sys:6379);
    /// when it is down, resolution still works, only slower.
    #[arg(long, env = "BUNAUTH_CACHE_URL", hide_env_values = true)]
    cache_url: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args = Args::parse();
    let url = resolve_secret(
        "BUNAUTH_DATABASE_URL",
        args.database_url.clone(),
        args.database_url_file.as_deref(),
    )?
    .context("no database: set BUNAUTH_DATABASE_URL (postgres://… or sqlite://PATH)")?;
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
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);

    let grpc = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let http = tokio::net::TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_listen))?;
    tracing::info!(grpc = %grpc.local_addr()?, http = %http.local_addr()?, "bun-auth serving");
    let health = kit::Service {
        name: "bun-auth".into(),
        router: axum::Router::new(),
        health: vec![kit::health_check_fn("database", move || {
            let store = store.clone();
            async move { store.check().await }
        })],
        on_shutdown: None,
    };
    let grpc_task = bunauth::serve_grpc(grpc, identity, &registry, shutdown.clone());
    let http_task = kit::serve(
        http,
        vec![health],
        &registry,
        args.server.config(),
        shutdown.clone(),
    );
    let (grpc_result, http_result) = tokio::join!(grpc_task, http_task);
    grpc_result?;
    http_result?;
    tracing::info!("bun-auth stopped");
    Ok(())
}
