//! One `main` for every standalone service binary (`buncast`, `bundoc`,
//! `bun-kms`, …): parse the options with the binary's environment prefix,
//! assemble its modules, serve until SIGINT/SIGTERM, let background work
//! finish.

use anyhow::Context;
use async_trait::async_trait;
use bunbase_core::Error;

use crate::assembly::{self, Host, ServiceModule};
use crate::cli::{self, CommonArgs};
use crate::kit;

/// A standalone binary: its options and what it serves (declared with
/// [`standalone!`](crate::standalone!)).
#[async_trait]
pub trait Standalone: clap::Parser + Send + Sync + Sized {
    /// The binary's name, for logs (`buncast`).
    const NAME: &'static str;
    /// The prefix of its environment variables (`BUNCAST`).
    const ENV: &'static str;
    /// Where it listens unless told otherwise.
    const LISTEN: &'static str;

    fn common(&self) -> &CommonArgs;

    /// Prepares `host` (credentials, event bus, data directory) and names
    /// the modules it serves.
    fn prepare(&self, host: &mut Host) -> Result<Vec<Box<dyn ServiceModule>>, Error>;

    /// The address of its HTTP port (`/health`, `/metrics`, its routes).
    fn http_listen(&self) -> &str {
        &self.common().listen
    }

    /// A one-off command to run instead of serving (`bun-kms rewrap`).
    async fn command(&self) -> Option<anyhow::Result<()>> {
        None
    }
}

/// Declares a standalone binary: its options struct (the shared
/// [`CommonArgs`] and the fields given, with their clap attributes), its
/// name, environment prefix and default address, and `prepare`; optionally
/// `http_listen` and a one-off `command`.
#[macro_export]
macro_rules! standalone {
    (
        $(#[$doc:meta])*
        $args:ident: $name:literal, $env:literal, $listen:literal,
        { $( $(#[$field_meta:meta])* $field:ident: $ty:ty ),* $(,)? },
        prepare($me:ident, $host:ident) $prepare:block
        $(, http_listen($http_me:ident) => $http:expr)?
        $(, command($command_me:ident) $command:block)?
    ) => {
        $(#[$doc])*
        #[derive(clap::Parser, Debug)]
        #[command(name = $name, version)]
        pub struct $args {
            #[command(flatten)]
            pub common: $crate::cli::CommonArgs,
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        #[async_trait::async_trait]
        impl $crate::standalone::Standalone for $args {
            const NAME: &'static str = $name;
            const ENV: &'static str = $env;
            const LISTEN: &'static str = $listen;

            fn common(&self) -> &$crate::cli::CommonArgs {
                &self.common
            }

            fn prepare(
                &self,
                $host: &mut $crate::assembly::Host,
            ) -> Result<Vec<Box<dyn $crate::assembly::ServiceModule>>, bunbase_core::Error> {
                let $me = self;
                $prepare
            }

            $(fn http_listen(&self) -> &str {
                let $http_me = self;
                $http
            })?

            $(async fn command(&self) -> Option<anyhow::Result<()>> {
                let $command_me = self;
                $command
            })?
        }
    };
}

/// Runs the binary `A`.
pub async fn main<A: Standalone>() -> anyhow::Result<()> {
    cli::init_tracing();
    let args: A = cli::parse_prefixed(A::ENV, A::LISTEN);
    if let Some(result) = args.command().await {
        return result;
    }
    let mut host = Host::new("./data");
    let modules = args.prepare(&mut host)?;
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
