//! `bunder-manager`: each project's key-value store over HTTP (port 8085,
//! prefix `/kv`), on a Redis-protocol server (bunder-sys).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bunbase_core::metrics::Registry;
use bunbase_shells::buncast::EventsArgs;
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::kit::{self, Shutdown};
use bunbase_shells::kvmanager::{self, KvArgs, KvState};
use clap::Parser;

/// Bunder Manager: per-project key-value storage with quotas and a change stream.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BUNDER_MANAGER_LISTEN", default_value = "127.0.0.1:8085")]
    listen: String,
    /// Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a).
    #[arg(long, env = "BUNDER_MANAGER_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// File with service tokens, one PROJECT:RIGHTS:TOKEN per line; must be chmod 600.
    #[arg(long, env = "BUNDER_MANAGER_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// BunAuth's gRPC URL (e.g. http://bun-auth:50051): accounts' tokens, end users'
    /// tokens and API keys are resolved there (cached for a few seconds).
    #[arg(long, env = "BUNDER_MANAGER_AUTH_URL")]
    auth_url: Option<String>,
    #[command(flatten)]
    kv: KvArgs,
    /// The change stream's transport (use the `bunder` bus shared with Buncast,
    /// so /events subscribers to topic `kv` see the changes too).
    #[command(flatten)]
    events: EventsArgs,
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args = Args::parse();
    let verifier = cli::service_verifier(
        "BUNDER_MANAGER",
        args.tokens.clone(),
        args.tokens_file.as_ref(),
        args.auth_url.as_deref(),
    )?;
    let store = args.kv.remote_store()?.context(
        "no KV server configured: set BUNDER_MANAGER_KV_URL (or _FILE) to the bunder-sys URL",
    )?;
    let registry = Registry::new();
    let events = args
        .events
        .build(&registry)
        .await
        .context("starting the change-stream bus")?;
    let kv = args.kv.build(Arc::new(store), events.clone(), &registry)?;
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        bus = args.events.describe(),
        "bunder-manager serving /kv"
    );
    let mut service = kvmanager::service(KvState {
        kv,
        verifier,
        keepalive: args.events.keepalive(),
    });
    service.on_shutdown = Some(Arc::new(move || events.shut_down()));
    kit::serve(
        listener,
        vec![service],
        &registry,
        args.server.config(),
        shutdown,
    )
    .await?;
    tracing::info!("bunder-manager stopped");
    Ok(())
}
