//! Command-line pieces every binary shares: where to listen, server
//! limits, credentials, the data directory, logging. Precedence is flag
//! over environment over default (clap). The shared options keep each
//! binary's environment prefix (`BUNCAST_LISTEN`, `BUNDOC_LISTEN`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bunbase_client::grpc::{RemoteVerifier, RemoteVerifierConfig};
use bunbase_core::auth::{StaticTokens, TokenVerifier};
use bunbase_core::config::{parse_size, resolve_secret};

use crate::kit::ServerConfig;

/// Limits of the HTTP server (the same for every BunBase shell).
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Largest request body, e.g. 1MiB.
    #[arg(long, env = "BUNBASE_BODY_LIMIT", default_value = "1MiB", value_parser = parse_size_arg)]
    pub body_limit: usize,
    /// Seconds to produce response headers before answering 408.
    #[arg(long, env = "BUNBASE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds in-flight requests and streams get to finish at shutdown.
    #[arg(long, env = "BUNBASE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Behind a trusted proxy (Traefik): take client addresses from X-Forwarded-For.
    #[arg(long, env = "BUNBASE_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,
}

impl ServerArgs {
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            body_limit: self.body_limit,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            trust_proxy: self.trust_proxy,
        }
    }
}

pub fn parse_size_arg(raw: &str) -> Result<usize, String> {
    parse_size(raw).map_err(|e| e.to_string())
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// What every server binary takes: where to listen, and the HTTP limits.
/// `listen`'s environment name carries the binary's prefix
/// ([`prefixed_command`]).
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The credentials a data service accepts (environment names carry the
/// binary's prefix: `BUNCAST_TOKENS`, `BUNDOC_AUTH_URL`, …).
#[derive(clap::Args, Debug, Clone)]
pub struct CredentialArgs {
    /// Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a).
    #[arg(long, hide_env_values = true)]
    pub tokens: Option<String>,
    /// File with service tokens, one PROJECT:RIGHTS:TOKEN per line; must be chmod 600.
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// BunAuth's gRPC URL (e.g. http://bun-auth:50051): accounts' tokens, end users'
    /// tokens and API keys are resolved there (cached for a few seconds).
    #[arg(long)]
    pub auth_url: Option<String>,
}

/// Where a binary keeps its files.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDirArgs {
    /// Where data lives (created if missing).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
}

/// The options whose environment name is `{PREFIX}_{ID}`.
const PREFIXED: &[&str] = &[
    "listen",
    "http_listen",
    "tokens",
    "tokens_file",
    "auth_url",
    "data_dir",
];

/// `A`'s command line, with each shared option ([`CommonArgs`],
/// [`CredentialArgs`], [`DataDirArgs`], [`crate::identity::IdentityArgs`])
/// read from `{env}_{NAME}` (`BUNDOC_LISTEN`) and listening on `listen`
/// unless told otherwise.
pub fn prefixed_command<A: clap::CommandFactory>(
    env: &'static str,
    listen: &'static str,
) -> clap::Command {
    let ids = PREFIXED
        .iter()
        .chain(crate::identity::IDENTITY_ARG_IDS)
        .copied();
    let mut command = A::command();
    for id in ids {
        if !command.get_arguments().any(|a| a.get_id() == id) {
            continue;
        }
        // Built once at start-up: leaking the few names is the price of
        // clap's 'static strings.
        let name: &'static str = Box::leak(format!("{env}_{}", id.to_uppercase()).into_boxed_str());
        command = command.mut_arg(id, |arg| arg.env(name));
    }
    command.mut_arg("listen", |arg| arg.default_value(listen).required(false))
}

/// Parses the process's arguments with [`prefixed_command`] (exits with
/// clap's message on bad input, `--help` and `--version`).
pub fn parse_prefixed<A: clap::Parser>(env: &'static str, listen: &'static str) -> A {
    from_command(prefixed_command::<A>(env, listen))
}

/// Parses the process's arguments with `command` (built from `A`).
pub fn from_command<A: clap::FromArgMatches>(command: clap::Command) -> A {
    let matches = command.get_matches();
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Loads `PROJECT:RIGHTS:TOKEN` service tokens from a value or a file.
pub fn load_tokens(
    env_name: &str,
    value: Option<String>,
    file: Option<&PathBuf>,
) -> Result<Option<StaticTokens>, bunbase_core::Error> {
    let Some(spec) = resolve_secret(env_name, value, file.map(|p| p.as_path()))? else {
        return Ok(None);
    };
    let tokens = StaticTokens::parse(spec.expose())?;
    if tokens.is_empty() {
        return Ok(None);
    }
    Ok(Some(tokens))
}

impl CredentialArgs {
    /// The configured service tokens (`{env}_TOKENS` / `{env}_TOKENS_FILE`).
    pub fn tokens(&self, env: &str) -> Result<Option<StaticTokens>, bunbase_core::Error> {
        load_tokens(
            &format!("{env}_TOKENS"),
            self.tokens.clone(),
            self.tokens_file.as_ref(),
        )
    }

    /// BunAuth at `auth_url`, when set: it resolves credentials and
    /// reports deleted projects.
    pub fn remote(&self) -> Result<Option<Arc<RemoteVerifier>>, bunbase_core::Error> {
        self.auth_url
            .as_deref()
            .map(|url| RemoteVerifier::new(url, RemoteVerifierConfig::default()).map(Arc::new))
            .transpose()
    }

    /// What a standalone service accepts: its service tokens, then
    /// `remote` (its [`CredentialArgs::remote`]). At least one of the two
    /// must be configured.
    pub fn verifiers(
        &self,
        env: &str,
        remote: Option<Arc<RemoteVerifier>>,
    ) -> Result<Vec<Arc<dyn TokenVerifier>>, bunbase_core::Error> {
        let mut verifiers: Vec<Arc<dyn TokenVerifier>> = Vec::new();
        if let Some(tokens) = self.tokens(env)? {
            verifiers.push(Arc::new(tokens));
        }
        if let Some(remote) = remote {
            verifiers.push(remote);
        }
        if verifiers.is_empty() {
            return Err(bunbase_core::Error::invalid(format!(
                "no credentials configured: set {env}_AUTH_URL (BunAuth) and/or {env}_TOKENS or {env}_TOKENS_FILE"
            )));
        }
        Ok(verifiers)
    }
}
