//! Command-line pieces every binary shares: server limits, logging,
//! credentials. Precedence is flag over environment over default (clap).

use std::path::PathBuf;
use std::time::Duration;

use bunbase_client::grpc::{RemoteVerifier, RemoteVerifierConfig};
use bunbase_core::auth::{StaticTokens, TokenVerifier, Verifiers};
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

/// The credentials a service shell accepts: its service tokens
/// (`{env}_TOKENS` / `{env}_TOKENS_FILE`), then BunAuth at `auth_url`
/// (accounts' and end users' tokens, API keys; cached a few seconds).
/// At least one of the two must be configured.
pub fn service_verifier(
    env: &str,
    tokens: Option<String>,
    tokens_file: Option<&PathBuf>,
    auth_url: Option<&str>,
) -> Result<std::sync::Arc<dyn TokenVerifier>, bunbase_core::Error> {
    let mut verifiers: Vec<std::sync::Arc<dyn TokenVerifier>> = Vec::new();
    if let Some(tokens) = load_tokens(&format!("{env}_TOKENS"), tokens, tokens_file)? {
        verifiers.push(std::sync::Arc::new(tokens));
    }
    if let Some(url) = auth_url {
        verifiers.push(std::sync::Arc::new(RemoteVerifier::new(
            url,
            RemoteVerifierConfig::default(),
        )?));
    }
    if verifiers.is_empty() {
        return Err(bunbase_core::Error::invalid(format!(
            "no credentials configured: set {env}_AUTH_URL (BunAuth) and/or {env}_TOKENS or {env}_TOKENS_FILE"
        )));
    }
    Ok(std::sync::Arc::new(Verifiers(verifiers)))
}
