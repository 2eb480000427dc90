use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bunbase_core::Error;
use bunbase_core::config::{
    Secret, StoreUrl, read_secret_file, resolve_secret, write_private_file,
};
use bunbase_core::storage::adapters::open_blobs;
use bunbase_core::storage::{
    BlobStore, Quota, Storage, StorageLimits, StorageMetrics, StorageSecret,
};
use tokio_util::sync::CancellationToken;

use crate::cli::parse_size_arg;

/// Storage's options (the same names in `storage` and the all-in-one).
#[derive(clap::Args, Debug, Clone)]
pub struct StorageArgs {
    /// Where objects' bytes live: a directory (`fs:/path` or a path),
    /// `s3://KEY:SECRET@host:port/bucket?region=…` for an S3 server (MinIO),
    /// or `memory`. Default: the `storage` directory in the data directory.
    #[arg(long, env = "STORAGE_URL", hide_env_values = true)]
    pub storage_url: Option<String>,
    /// File holding that URL (it may carry a secret); must be chmod 600.
    #[arg(long, env = "STORAGE_URL_FILE")]
    pub storage_url_file: Option<PathBuf>,
    /// Where buckets and object descriptions live: postgres://… or a SQLite
    /// file path (default: storage.db in the data directory).
    #[arg(long, env = "STORAGE_DATABASE_URL", hide_env_values = true)]
    pub storage_database_url: Option<String>,
    /// File holding the database URL; must be chmod 600.
    #[arg(long, env = "STORAGE_DATABASE_URL_FILE")]
    pub storage_database_url_file: Option<PathBuf>,
    /// The storage secret (64 hex digits: openssl rand -hex 32): signs URLs
    /// and seals S3 credentials. Replicas share it. The all-in-one makes one
    /// in its data directory when none is given.
    #[arg(long, env = "STORAGE_SECRET", hide_env_values = true)]
    pub storage_secret: Option<String>,
    /// File holding the storage secret; must be chmod 600.
    #[arg(long, env = "STORAGE_SECRET_FILE")]
    pub storage_secret_file: Option<PathBuf>,
    /// Largest object, e.g. 5GiB (buckets may set less).
    #[arg(long, env = "STORAGE_MAX_OBJECT_SIZE", default_value = "50GiB", value_parser = parse_size_arg)]
    pub storage_max_object_size: usize,
    /// Bytes one project may store, e.g. 100GiB.
    #[arg(long, env = "STORAGE_QUOTA_BYTES", default_value = "100GiB", value_parser = parse_size_arg)]
    pub storage_quota_bytes: usize,
    /// Objects one project may store.
    #[arg(long, env = "STORAGE_QUOTA_OBJECTS", default_value_t = 1_000_000)]
    pub storage_quota_objects: u64,
}

pub struct Built {
    pub storage: Storage,
    pub warnings: Vec<String>,
}

const SECRET_FILE: &str = "storage-secret";

impl StorageArgs {
    pub fn limits(&self) -> StorageLimits {
        StorageLimits {
            max_object_size: self.storage_max_object_size as u64,
            quota: Quota {
                max_bytes: self.storage_quota_bytes as u64,
                max_objects: self.storage_quota_objects,
            },
            ..StorageLimits::default()
        }
    }

    /// The secret as configured, else (embedded) the data directory's.
    fn secret(
        &self,
        data_dir: &Path,
        embedded: bool,
    ) -> Result<(StorageSecret, Vec<String>), Error> {
        if let Some(text) = resolve_secret(
            "STORAGE_SECRET",
            self.storage_secret.clone(),
            self.storage_secret_file.as_deref(),
        )? {
            return Ok((StorageSecret::parse(text.expose())?, Vec::new()));
        }
        if !embedded {
            return Err(Error::invalid(
                "no storage secret: set STORAGE_SECRET_FILE (64 hex digits: openssl rand -hex 32); replicas must share it",
            ));
        }
        let path = data_dir.join(SECRET_FILE);
        if !path.exists() {
            write_private_file(&path, StorageSecret::generate_text().as_bytes())?;
        }
        let text = read_secret_file(&path)?;
        Ok((StorageSecret::parse(text.expose())?, Vec::new()))
    }

    async fn blobs(&self, data_dir: &Path) -> Result<Arc<dyn BlobStore>, Error> {
        let url = resolve_secret(
            "STORAGE_URL",
            self.storage_url.clone(),
            self.storage_url_file.as_deref(),
        )?;
        let raw = url.as_ref().map(Secret::expose).unwrap_or("");
        open_blobs(raw, &data_dir.join("storage")).await
    }

    pub async fn build(
        &self,
        data_dir: &Path,
        embedded: bool,
        registry: &bunbase_core::metrics::Registry,
    ) -> Result<Built, Error> {
        let (secret, warnings) = self.secret(data_dir, embedded)?;
        let db = resolve_secret(
            "STORAGE_DATABASE_URL",
            self.storage_database_url.clone(),
            self.storage_database_url_file.as_deref(),
        )?;
        let meta = bunbase_core::storage::adapters::sql::open(&StoreUrl::or_file(
            db.as_ref(),
            data_dir,
            "storage.db",
        )?)
        .await?;
        let blobs = self.blobs(data_dir).await?;
        let storage = Storage::new(
            meta,
            blobs,
            self.limits(),
            StorageMetrics::new(registry)?,
            secret,
        );
        Ok(Built { storage, warnings })
    }
}

/// Aborts abandoned multipart uploads every hour until `stop`.
pub fn spawn_upload_expiry(
    storage: Storage,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match storage.expire_uploads().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(aborted = n, "abandoned multipart uploads aborted"),
                Err(e) => tracing::error!(error = %e, "expiring multipart uploads failed"),
            }
        }
    })
}
