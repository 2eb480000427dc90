use std::path::PathBuf;
use std::sync::Arc;

use bunbase_client::RemoteKeys;
use bunbase_core::Error;
use bunbase_core::config::{StoreUrl, resolve_secret};
use bunbase_core::docs::{DocsLimits, Quota};
use bunbase_core::kms::Keys;

use super::{DocsModule, DocsSource};
use crate::cli::parse_size_arg;

/// Bundoc's options (the same names in `bundoc` and the all-in-one; ids
/// prefixed, as other services' options share field names).
#[derive(clap::Args, Debug, Clone)]
pub struct DocsArgs {
    /// Where documents live: postgres://…, a SQLite file path, or `memory`
    /// (lost at exit; for tests). Default: bundoc.db in the data directory.
    #[arg(long, env = "BUNDOC_DATABASE_URL", hide_env_values = true)]
    pub docs_database_url: Option<String>,
    /// File holding the database URL (it may carry a password); must be chmod 600.
    #[arg(long, env = "BUNDOC_DATABASE_URL_FILE")]
    pub docs_database_url_file: Option<PathBuf>,
    /// Most documents a query may examine without an index narrowing it.
    #[arg(long, env = "BUNDOC_MAX_SCAN", default_value_t = 1000)]
    pub docs_max_scan: usize,
    /// Documents one project may hold.
    #[arg(long, env = "BUNDOC_MAX_DOCUMENTS", default_value_t = 1_000_000)]
    pub docs_max_documents: u64,
    /// Bytes of documents (compact JSON) one project may hold, e.g. 1GiB.
    #[arg(long, env = "BUNDOC_MAX_BYTES", default_value = "1GiB", value_parser = parse_size_arg)]
    pub docs_max_bytes: usize,
    /// Most writes in one batch.
    #[arg(long, env = "BUNDOC_MAX_BATCH", default_value_t = 500)]
    pub docs_max_batch: usize,
    /// Collections one project may have.
    #[arg(long, env = "BUNDOC_MAX_COLLECTIONS", default_value_t = 200)]
    pub docs_max_collections: usize,
    /// Largest request body on /bundoc (documents are at most 1MiB each;
    /// batches carry several). Replaces BUNBASE_BODY_LIMIT for these routes.
    #[arg(long, env = "BUNDOC_BODY_LIMIT", default_value = "8MiB", value_parser = parse_size_arg)]
    pub docs_body_limit: usize,
    /// BunKMS's URL (e.g. http://bun-kms:8080) for encrypted fields. Without
    /// it (and outside the all-in-one), collections with encrypted fields are refused.
    #[arg(long, env = "BUNDOC_KMS_URL")]
    pub docs_kms_url: Option<String>,
    /// A platform token BunKMS accepts: `*:rwa:TOKEN` in BUNKMS_TOKENS (admin,
    /// as Bundoc creates each project's field key on first use).
    #[arg(long, env = "BUNDOC_KMS_TOKEN", hide_env_values = true)]
    pub docs_kms_token: Option<String>,
    /// File holding that token; must be chmod 600.
    #[arg(long, env = "BUNDOC_KMS_TOKEN_FILE")]
    pub docs_kms_token_file: Option<PathBuf>,
}

impl DocsArgs {
    pub fn limits(&self) -> DocsLimits {
        DocsLimits {
            max_scan: self.docs_max_scan,
            quota: Quota {
                max_documents: self.docs_max_documents,
                max_bytes: self.docs_max_bytes as u64,
            },
            max_batch: self.docs_max_batch,
            max_collections: self.docs_max_collections,
            ..DocsLimits::default()
        }
    }

    /// The module these options describe.
    pub fn module(&self) -> Result<DocsModule, Error> {
        let url = resolve_secret(
            "BUNDOC_DATABASE_URL",
            self.docs_database_url.clone(),
            self.docs_database_url_file.as_deref(),
        )?;
        let url = url.map(|u| StoreUrl::parse(u.expose())).transpose()?;
        Ok(DocsModule {
            store: DocsSource::Url(url),
            limits: self.limits(),
            body_limit: self.docs_body_limit,
            keys: self.remote_keys()?,
        })
    }

    /// BunKMS over HTTP, if configured (URL and token go together).
    pub fn remote_keys(&self) -> Result<Option<Arc<dyn Keys>>, Error> {
        let token = resolve_secret(
            "BUNDOC_KMS_TOKEN",
            self.docs_kms_token.clone(),
            self.docs_kms_token_file.as_deref(),
        )?;
        match (&self.docs_kms_url, token) {
            (None, None) => Ok(None),
            (Some(url), Some(token)) => Ok(Some(Arc::new(RemoteKeys::new(url, token.expose())?))),
            (Some(_), None) => Err(Error::invalid(
                "BUNDOC_KMS_URL needs BUNDOC_KMS_TOKEN (or _FILE): a platform token of bun-kms",
            )),
            (None, Some(_)) => Err(Error::invalid(
                "BUNDOC_KMS_TOKEN is set but BUNDOC_KMS_URL is not",
            )),
        }
    }
}
