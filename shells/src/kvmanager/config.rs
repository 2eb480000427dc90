use std::path::PathBuf;
use std::sync::Arc;

use bunbase_core::Error;
use bunbase_core::config::resolve_secret;
use bunbase_core::events::Events;
use bunbase_core::kv::adapters::bunder::BunderKv;
use bunbase_core::kv::{Kv, KvLimits, KvMetrics, KvStore, Quota};
use bunbase_core::metrics::Registry;

use crate::cli::parse_size_arg;

/// Bunder Manager's options (the same names in `bunder-manager` and the
/// all-in-one).
#[derive(clap::Args, Debug, Clone)]
pub struct KvArgs {
    /// Redis-protocol server holding the data (our bunder-sys, or Redis):
    /// redis://[:password@]host:port[/db]. The all-in-one uses its own
    /// engine when this is not set.
    #[arg(long = "kv-url", env = "BUNDER_MANAGER_KV_URL", hide_env_values = true)]
    pub url: Option<String>,
    /// File holding that URL (it may carry a password); must be chmod 600.
    #[arg(long = "kv-url-file", env = "BUNDER_MANAGER_KV_URL_FILE")]
    pub url_file: Option<PathBuf>,
    /// Keys one project may hold.
    #[arg(
        long = "kv-max-keys",
        env = "BUNDER_MANAGER_MAX_KEYS",
        default_value_t = 100_000
    )]
    pub max_keys: u64,
    /// Bytes (keys plus values) one project may hold, e.g. 256MiB.
    #[arg(long = "kv-max-bytes", env = "BUNDER_MANAGER_MAX_BYTES", default_value = "256MiB", value_parser = parse_size_arg)]
    pub max_bytes: usize,
    /// Largest value, e.g. 1MiB (requests are also bounded by BUNBASE_BODY_LIMIT).
    #[arg(long = "kv-max-value", env = "BUNDER_MANAGER_MAX_VALUE", default_value = "1MiB", value_parser = parse_size_arg)]
    pub max_value: usize,
}

impl KvArgs {
    pub fn limits(&self) -> KvLimits {
        KvLimits {
            max_value_bytes: self.max_value,
            quota: Quota {
                max_keys: self.max_keys,
                max_bytes: self.max_bytes as u64,
            },
            ..KvLimits::default()
        }
    }

    /// The remote store, if a URL is configured.
    pub fn remote_store(&self) -> Result<Option<BunderKv>, Error> {
        let url = resolve_secret(
            "BUNDER_MANAGER_KV_URL",
            self.url.clone(),
            self.url_file.as_deref(),
        )?;
        url.map(|url| BunderKv::new(url.expose())).transpose()
    }

    /// The service on `store`, publishing changes through `events`.
    pub fn build(
        &self,
        store: Arc<dyn KvStore>,
        events: Events,
        registry: &Registry,
    ) -> Result<Kv, Error> {
        Ok(Kv::new(
            store,
            events,
            self.limits(),
            Arc::new(KvMetrics::new(registry)?),
        ))
    }
}
