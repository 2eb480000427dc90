//! `bundoc`: each project's document database with realtime queries
//! (port 8082; 8080 in its container; prefix `/bundoc`), on Postgres or a
//! SQLite file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bunbase_core::metrics::Registry;
use bunbase_shells::buncast::EventsArgs;
use bunbase_shells::bundoc::{self, DocsArgs, DocsState};
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::kit::{self, Shutdown};
use clap::Parser;

/// Bundoc: per-project JSON documents with indexes, rules, field encryption
/// and realtime queries.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BUNDOC_LISTEN", default_value = "127.0.0.1:8082")]
    listen: String,
    /// Where the default SQLite store (bundoc.db) lives.
    #[arg(long, env = "BUNDOC_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a).
    #[arg(long, env = "BUNDOC_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// File with service tokens, one PROJECT:RIGHTS:TOKEN per line; must be chmod 600.
    #[arg(long, env = "BUNDOC_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// BunAuth's gRPC URL (e.g. http://bun-auth:50051): accounts' tokens, end users'
    /// tokens and API keys are resolved there (cached for a few seconds).
    #[arg(long, env = "BUNDOC_AUTH_URL")]
    auth_url: Option<String>,
    #[command(flatten)]
    docs: DocsArgs,
    /// The change feed's transport (use the `bunder` bus shared with Buncast, so
    /// /events subscribers to topic `bundoc.<collection>` see the changes, and
    /// several bundoc instances share realtime queries).
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
        "BUNDOC",
        args.tokens.clone(),
        args.tokens_file.as_ref(),
        args.auth_url.as_deref(),
    )?;
    let keys = args.docs.remote_keys()?;
    if keys.is_none() {
        tracing::warn!("no BUNDOC_KMS_URL: collections with encrypted fields will be refused");
    }
    let registry = Registry::new();
    let events = args
        .events
        .build(&registry)
        .await
        .context("starting the change-feed bus")?;
    let (store, kind) = args
        .docs
        .open_store(&args.data_dir)
        .await
        .context("opening the document store")?;
    let docs = args.docs.build(store, events.clone(), keys, &registry)?;
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        store = kind,
        bus = args.events.describe(),
        "bundoc serving /bundoc"
    );
    let mut service = bundoc::service(DocsState {
        docs,
        verifier,
        keepalive: args.events.keepalive(),
        shutdown: shutdown.clone(),
        body_limit: args.docs.body_limit,
    });
    // Ending the bus's subscriptions ends every realtime query with `closed`.
    service.on_shutdown = Some(Arc::new(move || events.shut_down()));
    kit::serve(
        listener,
        vec![service],
        &registry,
        args.server.config(),
        shutdown,
    )
    .await?;
    tracing::info!("bundoc stopped");
    Ok(())
}
