//! `buncast`: the pub/sub event service (port 8081, prefix `/events`).

use std::path::PathBuf;

use anyhow::Context;
use bunbase_core::metrics::Registry;
use bunbase_shells::buncast::{self, BuncastState, EventsArgs};
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::kit::{self, Shutdown};
use clap::Parser;

/// Buncast: publish/subscribe events per project, over HTTP, SSE and WebSocket.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BUNCAST_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a).
    #[arg(long, env = "BUNCAST_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// File with service tokens, one PROJECT:RIGHTS:TOKEN per line; must be chmod 600.
    #[arg(long, env = "BUNCAST_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// BunAuth's gRPC URL (e.g. http://bun-auth:50051): accounts' tokens, end users'
    /// tokens and API keys are resolved there (cached for a few seconds).
    #[arg(long, env = "BUNCAST_AUTH_URL")]
    auth_url: Option<String>,
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
        "BUNCAST",
        args.tokens.clone(),
        args.tokens_file.as_ref(),
        args.auth_url.as_deref(),
    )?;
    let registry = Registry::new();
    let events = args
        .events
        .build(&registry)
        .await
        .context("starting the event bus")?;
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);
    let state = BuncastState {
        events,
        verifier,
        keepalive: args.events.keepalive(),
        shutdown: shutdown.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        bus = args.events.describe(),
        "buncast serving /events"
    );
    kit::serve(
        listener,
        vec![buncast::service(state)],
        &registry,
        args.server.config(),
        shutdown,
    )
    .await?;
    tracing::info!("buncast stopped");
    Ok(())
}
