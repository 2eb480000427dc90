//! `bun-kms`: keys, envelope encryption, signing, secrets and the audit
//! log (port 8083; 8080 in its container; prefix `/kms`).

use std::path::PathBuf;

use anyhow::Context;
use bunbase_core::kms::master::{MasterKey, Origin};
use bunbase_core::metrics::Registry;
use bunbase_shells::bunkms::{self, KmsArgs, KmsState};
use bunbase_shells::cli::{self, ServerArgs};
use bunbase_shells::kit::{self, Shutdown};
use clap::Parser;

/// BunKMS: per-project keys, encryption, signatures, MACs and secrets.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BUNKMS_LISTEN", default_value = "127.0.0.1:8083")]
    listen: String,
    /// Where the SQLite store (and a development master key) live.
    #[arg(long, env = "BUNKMS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a).
    #[arg(long, env = "BUNKMS_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// File with service tokens, one PROJECT:RIGHTS:TOKEN per line; must be chmod 600.
    #[arg(long, env = "BUNKMS_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// BunAuth's gRPC URL (e.g. http://bun-auth:50051): accounts' tokens, end users'
    /// tokens and API keys are resolved there (cached for a few seconds).
    #[arg(long, env = "BUNKMS_AUTH_URL")]
    auth_url: Option<String>,
    #[command(flatten)]
    kms: KmsArgs,
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Offline: re-wrap every stored key version and secret under a new master
    /// key (stop the service first). The current key comes from
    /// BUNKMS_MASTER_KEY(_FILE); afterwards start the service with the new one.
    /// Safe to run again if interrupted.
    Rewrap {
        /// File holding the new master key (64 hex digits or base64; chmod 600).
        #[arg(long)]
        new_master_key_file: PathBuf,
    },
}

async fn rewrap(args: &Args, new_key_file: &std::path::Path) -> anyhow::Result<()> {
    let (old, _) = args
        .kms
        .master(args.kms.dev.then_some(args.data_dir.as_path()))?;
    let new = MasterKey::parse(bunbase_core::config::read_secret_file(new_key_file)?.expose())
        .context("the new master key")?;
    anyhow::ensure!(
        old.id() != new.id(),
        "the new master key is the current one"
    );
    let (store, kind) = args.kms.open_store(&args.data_dir).await?;
    let done = bunbase_core::kms::rewrap::rewrap(&*store, &old, &new).await?;
    println!(
        "re-wrapped {} key versions and {} secret versions in the {kind} store from master key {} to {} ({} already done)",
        done.key_versions,
        done.secret_versions,
        old.id(),
        new.id(),
        done.already_done
    );
    println!("start bun-kms with the new master key now; keep the old one until you have checked.");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let args = Args::parse();
    if let Some(Command::Rewrap {
        new_master_key_file,
    }) = &args.command
    {
        return rewrap(&args, new_master_key_file).await;
    }
    let verifier = cli::service_verifier(
        "BUNKMS",
        args.tokens.clone(),
        args.tokens_file.as_ref(),
        args.auth_url.as_deref(),
    )?;
    let registry = Registry::new();
    let built = args
        .kms
        .build(&args.data_dir, false, &registry)
        .await
        .context("starting BunKMS")?;
    if built.origin == Origin::Development {
        tracing::warn!(
            path = %args.data_dir.join(bunbase_core::kms::master::DEV_FILE).display(),
            "DEVELOPMENT MODE: the master key was generated into the data directory; anyone who can read it can read every key. Set BUNKMS_MASTER_KEY_FILE in production."
        );
    }
    let shutdown = Shutdown::new();
    kit::shutdown_on_signals(&shutdown);
    let scheduler = bunkms::spawn_scheduler(built.kms.clone(), shutdown.token.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        store = built.store,
        master_key = built.kms.master_key_id(),
        "bun-kms serving /kms"
    );
    kit::serve(
        listener,
        vec![bunkms::service(KmsState {
            kms: built.kms,
            verifier,
        })],
        &registry,
        args.server.config(),
        shutdown,
    )
    .await?;
    scheduler.abort();
    tracing::info!("bun-kms stopped");
    Ok(())
}
