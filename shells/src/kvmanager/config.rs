use std::path::PathBuf;

use bunbase_core::Error;
use bunbase_core::config::resolve_secret;
use bunbase_core::kv::aof::FsyncPolicy;
use bunbase_core::kv::{KvLimits, Quota};

use super::module::{EmbeddedKv, KvBackend, KvModule};
use crate::cli::parse_size_arg;

/// Bunder Manager's options (the same names in `bunder-manager` and the
/// all-in-one).
#[derive(clap::Args, Debug, Clone)]
pub struct KvArgs {
    /// Redis-protocol server holding the data (our bunder-sys, or Redis):
    /// redis://[:password@]host:port[/db]. The all-in-one uses its own
    /// engine when this is not set.
    #[arg(long, env = "BUNDER_MANAGER_KV_URL", hide_env_values = true)]
    pub kv_url: Option<String>,
    /// File holding that URL (it may carry a password); must be chmod 600.
    #[arg(long, env = "BUNDER_MANAGER_KV_URL_FILE")]
    pub kv_url_file: Option<PathBuf>,
    /// Keys one project may hold.
    #[arg(long, env = "BUNDER_MANAGER_MAX_KEYS", default_value_t = 100_000)]
    pub kv_max_keys: u64,
    /// Bytes (keys plus values) one project may hold, e.g. 256MiB.
    #[arg(long, env = "BUNDER_MANAGER_MAX_BYTES", default_value = "256MiB", value_parser = parse_size_arg)]
    pub kv_max_bytes: usize,
    /// Largest value, e.g. 1MiB (requests are also bounded by BUNBASE_BODY_LIMIT).
    #[arg(long, env = "BUNDER_MANAGER_MAX_VALUE", default_value = "1MiB", value_parser = parse_size_arg)]
    pub kv_max_value: usize,
}

/// The all-in-one's in-process KV engine (options of `bunbase` only).
#[derive(clap::Args, Debug, Clone)]
pub struct EmbeddedKvArgs {
    /// Also serve the KV engine over RESP (Redis clients) on this address, e.g.
    /// 127.0.0.1:6379. Off unless set.
    #[arg(long, env = "BUNBASE_RESP_LISTEN")]
    pub resp_listen: Option<String>,
    /// Password RESP clients must AUTH with.
    #[arg(long, env = "BUNBASE_RESP_PASSWORD", hide_env_values = true)]
    pub resp_password: Option<String>,
    /// File holding the RESP password; must be chmod 600.
    #[arg(long, env = "BUNBASE_RESP_PASSWORD_FILE")]
    pub resp_password_file: Option<PathBuf>,
    /// When the KV engine's append-only file (kv.aof) is fsynced: always, everysec or no.
    #[arg(long, env = "BUNBASE_KV_APPENDFSYNC", default_value = "everysec")]
    pub kv_appendfsync: String,
    /// Memory the in-process KV engine may use for keys and values, all
    /// projects together (Redis's maxmemory, noeviction): writes over it get
    /// 507 quota_exceeded and write nothing. 0 = no limit.
    #[arg(long, env = "BUNBASE_KV_MAXMEMORY", default_value = "512MiB", value_parser = parse_size_arg)]
    pub kv_maxmemory: usize,
}

impl KvArgs {
    pub fn limits(&self) -> KvLimits {
        KvLimits {
            max_value_bytes: self.kv_max_value,
            quota: Quota {
                max_keys: self.kv_max_keys,
                max_bytes: self.kv_max_bytes as u64,
            },
            ..KvLimits::default()
        }
    }

    /// The module these options describe: on the configured server, else
    /// (the all-in-one, given `embedded`) on the in-process engine.
    pub fn module(&self, embedded: Option<&EmbeddedKvArgs>) -> Result<KvModule, Error> {
        let url = resolve_secret(
            "BUNDER_MANAGER_KV_URL",
            self.kv_url.clone(),
            self.kv_url_file.as_deref(),
        )?;
        let backend = match (url, embedded) {
            (Some(_), Some(local)) if local.resp_listen.is_some() => {
                return Err(Error::invalid(
                    "--resp-listen serves the in-process KV engine; it cannot be used with --kv-url",
                ));
            }
            (Some(url), _) => KvBackend::Remote(url),
            (None, Some(local)) => KvBackend::Embedded(EmbeddedKv {
                fsync: FsyncPolicy::parse(&local.kv_appendfsync)?,
                max_memory: (local.kv_maxmemory > 0).then_some(local.kv_maxmemory),
                resp_listen: local.resp_listen.clone(),
                resp_password: resolve_secret(
                    "BUNBASE_RESP_PASSWORD",
                    local.resp_password.clone(),
                    local.resp_password_file.as_deref(),
                )?,
            }),
            (None, None) => {
                return Err(Error::invalid(
                    "no KV server configured: set BUNDER_MANAGER_KV_URL (or _FILE) to the bunder-sys URL",
                ));
            }
        };
        Ok(KvModule {
            limits: self.limits(),
            backend,
        })
    }
}
