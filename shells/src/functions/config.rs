use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bunbase_core::Error;
use bunbase_core::config::{Secret, StoreUrl, resolve_secret};
use bunbase_core::events::Events;
use bunbase_core::functions::outbound::{Outbound, OutboundConfig};
use bunbase_core::functions::platform::{LocalPlatform, Platform};
use bunbase_core::functions::runtime::{Engine, EngineConfig};
use bunbase_core::functions::triggers::{TriggerSettings, run_triggers};
use bunbase_core::functions::{FunctionLimits, FunctionMetrics, Functions, Limits};
use bunbase_core::storage::BlobStore;
use bunbase_core::storage::adapters::open_blobs;

use crate::assembly::Host;
use crate::cli::parse_size_arg;
use crate::functions::RemotePlatform;

/// Functions' options (the same names in `functions` and the all-in-one).
#[derive(clap::Args, Debug, Clone)]
pub struct FunctionsArgs {
    /// Where functions, versions and the invocation log live: postgres://…
    /// or a SQLite file path (default: functions.db in the data directory).
    #[arg(long, env = "FUNCTIONS_DATABASE_URL", hide_env_values = true)]
    pub functions_database_url: Option<String>,
    /// File holding the database URL; must be chmod 600.
    #[arg(long, env = "FUNCTIONS_DATABASE_URL_FILE")]
    pub functions_database_url_file: Option<std::path::PathBuf>,
    /// Where compiled bundles live: a directory (`fs:/path` or a path),
    /// `s3://KEY:SECRET@host:port/bucket` (MinIO), or `memory`. Default: the
    /// `functions` directory in the data directory.
    #[arg(long, env = "FUNCTIONS_BUNDLES_URL", hide_env_values = true)]
    pub functions_bundles_url: Option<String>,
    /// File holding the bundles URL; must be chmod 600.
    #[arg(long, env = "FUNCTIONS_BUNDLES_URL_FILE")]
    pub functions_bundles_url_file: Option<std::path::PathBuf>,
    /// Threads that run JavaScript (default: the number of cores, at least 2).
    #[arg(long, env = "FUNCTIONS_WORKERS")]
    pub functions_workers: Option<usize>,
    /// Default memory of one invocation's JavaScript heap, in MiB.
    #[arg(long, env = "FUNCTIONS_MEMORY_MB", default_value_t = 64)]
    pub functions_memory_mb: u32,
    /// The most memory a function may ask for, in MiB.
    #[arg(long, env = "FUNCTIONS_MAX_MEMORY_MB", default_value_t = 256)]
    pub functions_max_memory_mb: u32,
    /// Default CPU time of one invocation, in ms.
    #[arg(long, env = "FUNCTIONS_CPU_MS", default_value_t = 1_000)]
    pub functions_cpu_ms: u32,
    /// The most CPU time a function may ask for, in ms.
    #[arg(long, env = "FUNCTIONS_MAX_CPU_MS", default_value_t = 30_000)]
    pub functions_max_cpu_ms: u32,
    /// Default wall time of one invocation, in ms.
    #[arg(long, env = "FUNCTIONS_WALL_MS", default_value_t = 30_000)]
    pub functions_wall_ms: u32,
    /// The most wall time a function may ask for, in ms.
    #[arg(long, env = "FUNCTIONS_MAX_WALL_MS", default_value_t = 300_000)]
    pub functions_max_wall_ms: u32,
    /// The largest request or response body a function may ask for, e.g. 32MiB.
    #[arg(long, env = "FUNCTIONS_MAX_BODY", default_value = "32MiB", value_parser = parse_size_arg)]
    pub functions_max_body: usize,
    /// The largest deployment (all source files), e.g. 5MiB.
    #[arg(long, env = "FUNCTIONS_MAX_BUNDLE", default_value = "5MiB", value_parser = parse_size_arg)]
    pub functions_max_bundle: usize,
    /// Functions one project may have.
    #[arg(long, env = "FUNCTIONS_MAX_PER_PROJECT", default_value_t = 100)]
    pub functions_max_per_project: usize,
    /// Invocations of one project running at once on this instance.
    #[arg(long, env = "FUNCTIONS_PROJECT_CONCURRENCY", default_value_t = 200)]
    pub functions_project_concurrency: u32,
    /// Days invocation records are kept.
    #[arg(long, env = "FUNCTIONS_LOG_DAYS", default_value_t = 7)]
    pub functions_log_days: u64,
    /// Let `fetch` reach private, loopback and link-local addresses (only
    /// for development: functions could otherwise probe your network).
    #[arg(long, env = "FUNCTIONS_ALLOW_PRIVATE_FETCH")]
    pub functions_allow_private_fetch: bool,
    /// Time limit of one outgoing `fetch`, in ms.
    #[arg(long, env = "FUNCTIONS_FETCH_TIMEOUT_MS", default_value_t = 10_000)]
    pub functions_fetch_timeout_ms: u64,
    /// Attempts to deliver an event to a function before it goes to the
    /// dead-letter topic `functions.<name>.dead_letter`.
    #[arg(long, env = "FUNCTIONS_TRIGGER_ATTEMPTS", default_value_t = 3)]
    pub functions_trigger_attempts: u32,
    /// Wait before retrying a failed delivery, in ms (doubled each time).
    #[arg(long, env = "FUNCTIONS_TRIGGER_BACKOFF_MS", default_value_t = 1_000)]
    pub functions_trigger_backoff_ms: u64,
    /// Where functions reach Bundoc, Bunder Manager, Storage and BunKMS
    /// when those run elsewhere: one base URL that routes every prefix
    /// (the gateway, e.g. http://traefik). Events still go on the bus.
    #[arg(long, env = "FUNCTIONS_PLATFORM_URL")]
    pub functions_platform_url: Option<String>,
    /// A platform token those services accept (`*:rw:TOKEN` in their
    /// service tokens: valid in every project).
    #[arg(long, env = "FUNCTIONS_PLATFORM_TOKEN", hide_env_values = true)]
    pub functions_platform_token: Option<String>,
    /// File holding that token; must be chmod 600.
    #[arg(long, env = "FUNCTIONS_PLATFORM_TOKEN_FILE")]
    pub functions_platform_token_file: Option<std::path::PathBuf>,
}

impl FunctionsArgs {
    /// Every option at its default (embedders and tests change fields).
    pub fn defaults() -> FunctionsArgs {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            functions: FunctionsArgs,
        }
        <Defaults as clap::Parser>::parse_from(["functions"]).functions
    }
}

pub struct Built {
    pub functions: Arc<Functions>,
    pub events: Option<Events>,
    pub summary: String,
    pub warnings: Vec<String>,
}

impl FunctionsArgs {
    pub fn limits(&self) -> FunctionLimits {
        let body = self.functions_max_body.min(u32::MAX as usize) as u32;
        let base = FunctionLimits::default();
        FunctionLimits {
            default: Limits {
                memory_mb: self.functions_memory_mb,
                cpu_ms: self.functions_cpu_ms,
                wall_ms: self.functions_wall_ms,
                request_bytes: base.default.request_bytes.min(body),
                response_bytes: base.default.response_bytes.min(body),
                concurrency: base.default.concurrency,
            },
            maximum: Limits {
                memory_mb: self.functions_max_memory_mb,
                cpu_ms: self.functions_max_cpu_ms,
                wall_ms: self.functions_max_wall_ms,
                request_bytes: body,
                response_bytes: body,
                concurrency: base.maximum.concurrency,
            },
            max_bundle_bytes: self.functions_max_bundle,
            max_functions_per_project: self.functions_max_per_project,
            project_concurrency: self.functions_project_concurrency,
            log_retention: Duration::from_secs(self.functions_log_days.max(1) * 24 * 3600),
            ..base
        }
    }

    pub fn trigger_settings(&self) -> TriggerSettings {
        TriggerSettings {
            attempts: self.functions_trigger_attempts.max(1),
            backoff: Duration::from_millis(self.functions_trigger_backoff_ms),
            ..TriggerSettings::default()
        }
    }

    /// The services over HTTP, if configured (URL and token go together).
    fn remote_platform(&self) -> Result<Option<RemotePlatform>, Error> {
        let token = resolve_secret(
            "FUNCTIONS_PLATFORM_TOKEN",
            self.functions_platform_token.clone(),
            self.functions_platform_token_file.as_deref(),
        )?;
        match (&self.functions_platform_url, token) {
            (None, None) => Ok(None),
            (Some(url), Some(token)) => Ok(Some(RemotePlatform::new(url, token.expose())?)),
            (Some(_), None) => Err(Error::invalid(
                "FUNCTIONS_PLATFORM_URL needs FUNCTIONS_PLATFORM_TOKEN (or _FILE): a platform token (*:rw:TOKEN) of the services",
            )),
            (None, Some(_)) => Err(Error::invalid(
                "FUNCTIONS_PLATFORM_TOKEN is set but FUNCTIONS_PLATFORM_URL is not",
            )),
        }
    }

    /// What functions' bindings call, and their names for the summary:
    /// the services at FUNCTIONS_PLATFORM_URL when it is set (events on
    /// the bus when there is one), else those of this process.
    fn platform(
        &self,
        host: &Host,
        events: Option<Events>,
    ) -> Result<(Arc<dyn Platform>, String), Error> {
        if let Some(remote) = self.remote_platform()? {
            let remote = remote.with_events(events);
            let url = self.functions_platform_url.as_deref().unwrap_or_default();
            let bindings = if remote.publishes_locally() {
                format!("docs, kv, storage, kms via {url}; events on the bus")
            } else {
                format!("docs, kv, events, storage, kms via {url}")
            };
            return Ok((Arc::new(remote), bindings));
        }
        let platform = LocalPlatform {
            docs: host.provided(),
            kv: host.provided(),
            events,
            storage: host.provided(),
            kms: host.kms().cloned(),
        };
        let mut reachable = Vec::new();
        for (name, present) in [
            ("docs", platform.docs.is_some()),
            ("kv", platform.kv.is_some()),
            ("events", platform.events.is_some()),
            ("storage", platform.storage.is_some()),
            ("kms", platform.kms.is_some()),
        ] {
            if present {
                reachable.push(name);
            }
        }
        let bindings = if reachable.is_empty() {
            "none".to_string()
        } else {
            reachable.join(", ")
        };
        Ok((Arc::new(platform), bindings))
    }

    async fn bundles(&self, data_dir: &Path) -> Result<Arc<dyn BlobStore>, Error> {
        let url = resolve_secret(
            "FUNCTIONS_BUNDLES_URL",
            self.functions_bundles_url.clone(),
            self.functions_bundles_url_file.as_deref(),
        )?;
        let raw = url.as_ref().map(Secret::expose).unwrap_or("");
        open_blobs(raw, &data_dir.join("functions")).await
    }

    /// The service, calling the services this process runs.
    pub async fn build(&self, host: &mut Host) -> Result<Built, Error> {
        let db = resolve_secret(
            "FUNCTIONS_DATABASE_URL",
            self.functions_database_url.clone(),
            self.functions_database_url_file.as_deref(),
        )?;
        let url = StoreUrl::or_file(db.as_ref(), &host.data_dir, "functions.db")?;
        let store = bunbase_core::functions::adapters::sql::open(&url).await?;
        let bundles = self.bundles(&host.data_dir).await?;
        let mut engine = EngineConfig::default();
        if let Some(workers) = self.functions_workers {
            engine.workers = workers.max(1);
        }
        let workers = engine.workers;
        let engine = Arc::new(Engine::start(engine)?);
        let events = host.events().await.ok();
        let (platform, bindings) = self.platform(host, events.clone())?;
        let mut warnings = Vec::new();
        if self.functions_allow_private_fetch {
            warnings.push(
                "FUNCTIONS_ALLOW_PRIVATE_FETCH is on: functions can reach private and loopback addresses".into(),
            );
        }
        let outbound = Outbound::new(OutboundConfig {
            allow_private: self.functions_allow_private_fetch,
            timeout: Duration::from_millis(self.functions_fetch_timeout_ms),
            max_response_bytes: self.functions_max_body,
            max_request_bytes: self.functions_max_body,
        })?;
        let functions = Functions::new(
            store,
            bundles,
            engine,
            platform,
            Arc::new(outbound),
            self.limits(),
            Arc::new(FunctionMetrics::new(&host.registry)?),
        );
        Ok(Built {
            functions: Arc::new(functions),
            events,
            summary: format!(
                "{} store, {workers} workers, bindings: {bindings}",
                url.kind()
            ),
            warnings,
        })
    }
}

/// The trigger runners and the hourly log pruning, until shutdown.
pub fn spawn_background(
    host: &mut Host,
    functions: Arc<Functions>,
    events: Option<Events>,
    settings: TriggerSettings,
) {
    let stop = host.shutdown.token.clone();
    let triggers = tokio::spawn(run_triggers(
        functions.clone(),
        events,
        settings,
        stop.clone(),
    ));
    let pruning = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match functions.prune_logs().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "old function invocation records removed"),
                Err(e) => tracing::error!(error = %e, "pruning function logs failed"),
            }
        }
    });
    host.finish_with(async move {
        let _ = triggers.await;
        let _ = pruning.await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(url: Option<&str>, token: Option<&str>) -> FunctionsArgs {
        FunctionsArgs {
            functions_platform_url: url.map(str::to_string),
            functions_platform_token: token.map(str::to_string),
            ..FunctionsArgs::defaults()
        }
    }

    #[test]
    fn the_platform_url_and_token_go_together() {
        let token = Some("platform-token-000000000000007");
        assert!(with(None, None).remote_platform().unwrap().is_none());
        assert!(
            with(Some("http://traefik"), token)
                .remote_platform()
                .unwrap()
                .is_some()
        );
        let err = with(Some("http://traefik"), None)
            .remote_platform()
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("FUNCTIONS_PLATFORM_TOKEN"),
            "{err}"
        );
        let err = with(None, token).remote_platform().err().unwrap();
        assert!(err.to_string().contains("FUNCTIONS_PLATFORM_URL"), "{err}");
        assert!(with(Some("traefik"), token).remote_platform().is_err());
    }
}
