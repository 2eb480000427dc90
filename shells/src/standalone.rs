//! One `main` for every standalone service binary (`buncast`, `bundoc`,
//! `bun-kms`, …): parse the options with the binary's environment prefix,
//! assemble its modules, serve until SIGINT/SIGTERM, let background work
//! finish.

use std::path::PathBuf;

use anyhow::Context;
use async_trait::async_trait;
use bunbase_core::Error;

use crate::assembly::{self, Host, ServiceModule};
use crate::buncast::EventsArgs;
use crate::cli::{self, CommonArgs, CredentialArgs};
use crate::kit;

/// A standalone binary: its options and what it serves.
#[async_trait]
pub trait Standalone: clap::Parser + Send + Sync + Sized {
    /// The binary's name, for logs (`buncast`).
    const NAME: &'static str;
    /// The prefix of its environment variables (`BUNCAST`).
    const ENV: &'static str;
    /// Where it listens unless told otherwise.
    const LISTEN: &'static str;

    fn common(&self) -> &CommonArgs;

    /// The credentials it accepts, when it serves project data.
    fn credentials(&self) -> Option<&CredentialArgs> {
        None
    }

    /// Where its embedded stores keep their files.
    fn data_dir(&self) -> PathBuf {
        PathBuf::from("./data")
    }

    /// The event bus its services publish to, when they do.
    fn events(&self) -> Option<&EventsArgs> {
        None
    }

    /// The address of its HTTP port (`/health`, `/metrics`, its routes).
    fn http_listen(&self) -> &str {
        &self.common().listen
    }

    /// What it serves.
    fn modules(&self) -> Result<Vec<Box<dyn ServiceModule>>, Error>;

    /// A one-off command to run instead of serving (`bun-kms rewrap`).
    async fn command(&self) -> Option<anyhow::Result<()>> {
        None
    }
}

/// Runs the binary `A`.
pub async fn main<A: Standalone>() -> anyhow::Result<()> {
    cli::init_tracing();
    let args: A = cli::parse_prefixed(A::ENV, A::LISTEN);
    if let Some(result) = args.command().await {
        return result;
    }
    let mut host = Host::new(args.data_dir());
    if let Some(credentials) = args.credentials() {
        for verifier in credentials.verifiers(A::ENV)? {
            host.accept(verifier);
        }
    }
    if let Some(events) = args.events() {
        host.set_events(events.settings()?);
    }
    let modules = args.modules()?;
    let modules: Vec<&dyn ServiceModule> = modules.iter().map(AsRef::as_ref).collect();
    kit::shutdown_on_signals(&host.shutdown);
    let assembly = assembly::assemble(&mut host, &modules, &|_| true).await?;
    for warning in &assembly.warnings {
        tracing::warn!("{warning}");
    }
    let address = args.http_listen();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let serving: Vec<String> = assembly
        .summaries
        .iter()
        .map(|(prefix, summary)| format!("{prefix}: {summary}"))
        .collect();
    tracing::info!(
        address = %listener.local_addr()?,
        serving = serving.join("; "),
        "{} serving",
        A::NAME
    );
    assembly::serve(listener, assembly, host, args.common().server.config()).await?;
    tracing::info!("{} stopped", A::NAME);
    Ok(())
}
