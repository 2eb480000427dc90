use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bunbase_core::Error;
use bunbase_core::config::{StoreUrl, resolve_secret};
use bunbase_core::kms::adapters::open;
use bunbase_core::kms::master::{MasterKey, Origin};
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics};
use bunbase_core::metrics::Registry;
use tokio_util::sync::CancellationToken;

use crate::cli::parse_size_arg;

/// BunKMS's options (the same names in `bun-kms` and the all-in-one).
#[derive(clap::Args, Debug, Clone)]
pub struct KmsArgs {
    /// The master key: 64 hex digits or base64 of 32 bytes (`openssl rand -hex 32`).
    #[arg(long, env = "BUNKMS_MASTER_KEY", hide_env_values = true)]
    pub kms_master_key: Option<String>,
    /// File holding the master key; must be chmod 600.
    #[arg(long, env = "BUNKMS_MASTER_KEY_FILE")]
    pub kms_master_key_file: Option<PathBuf>,
    /// Development only: without a master key, generate one into the data
    /// directory (dev-master-key) instead of refusing to start.
    #[arg(long, env = "BUNKMS_DEV", default_value_t = false)]
    pub kms_dev: bool,
    /// Where keys, secrets and the audit log live: postgres://… or a SQLite
    /// file path (default: kms.db in the data directory).
    #[arg(long, env = "BUNKMS_DATABASE_URL", hide_env_values = true)]
    pub kms_database_url: Option<String>,
    /// File holding the database URL (it may carry a password); must be chmod 600.
    #[arg(long, env = "BUNKMS_DATABASE_URL_FILE")]
    pub kms_database_url_file: Option<PathBuf>,
    /// Largest plaintext, message or secret value, e.g. 64KiB.
    #[arg(long, env = "BUNKMS_MAX_PLAINTEXT", default_value = "64KiB", value_parser = parse_size_arg)]
    pub kms_max_plaintext: usize,
}

/// A running KMS and where its master key came from.
pub struct Built {
    pub kms: Kms,
    pub origin: Origin,
    pub store: &'static str,
}

impl KmsArgs {
    /// The master key (or, with `dev_dir`, the development key there).
    pub fn master(&self, dev_dir: Option<&Path>) -> Result<(MasterKey, Origin), Error> {
        MasterKey::load(
            self.kms_master_key.clone(),
            self.kms_master_key_file.as_deref(),
            dev_dir,
        )
    }

    /// The configured store, else kms.db in `data_dir`.
    pub fn store_url(&self, data_dir: &Path) -> Result<StoreUrl, Error> {
        let url = resolve_secret(
            "BUNKMS_DATABASE_URL",
            self.kms_database_url.clone(),
            self.kms_database_url_file.as_deref(),
        )?;
        StoreUrl::or_file(url.as_ref(), data_dir, "kms.db")
    }

    /// Opens the store and loads the master key; `dev_default` turns
    /// development mode on when no key is configured (the all-in-one).
    pub async fn build(
        &self,
        data_dir: &Path,
        dev_default: bool,
        registry: &Registry,
    ) -> Result<Built, Error> {
        let (master, origin) = self.master((self.kms_dev || dev_default).then_some(data_dir))?;
        let url = self.store_url(data_dir)?;
        let store = open(&url).await?;
        let kms = Kms::new(
            store,
            Arc::new(master),
            KmsLimits {
                max_plaintext: self.kms_max_plaintext,
                ..KmsLimits::default()
            },
            Arc::new(KmsMetrics::new(registry)?),
        );
        kms.check_master().await?;
        Ok(Built {
            kms,
            origin,
            store: url.kind(),
        })
    }
}

/// Runs due rotations and deletions every minute until `stop`.
pub fn spawn_scheduler(kms: Kms, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match kms.run_due(bunbase_core::id::now_millis()).await {
                Ok((0, 0)) => {}
                Ok((rotated, deleted)) => tracing::info!(
                    rotated,
                    deleted,
                    "scheduled key rotations and deletions done"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "scheduled key rotations and deletions failed")
                }
            }
        }
    })
}
