//! The functions service: deploy, list, roll back and delete functions;
//! the invocation path is in `invoke.rs`, the trigger runners in
//! `triggers.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, broadcast};

use super::compile::{self, Bundle, CompileLimits};
use super::cron::Schedule;
use super::metrics::FunctionMetrics;
use super::model::{
    Deployment, FunctionInfo, FunctionName, Invocation, Limits, LimitsRequest, LogQuery,
    SourceFile, Trigger, Version,
};
use super::outbound::{self, Outbound};
use super::platform::Platform;
use super::runtime::Engine;
use super::store::FunctionStore;
use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::events::TopicFilter;
use crate::id::{ProjectId, now_millis, random_hex};
use crate::storage::BlobStore;

/// The instance's bounds and defaults.
#[derive(Debug, Clone, Copy)]
pub struct FunctionLimits {
    /// What a deployment gets when it asks for nothing.
    pub default: Limits,
    /// The most a deployment may ask for.
    pub maximum: Limits,
    /// Source bytes of one deployment (all files).
    pub max_bundle_bytes: usize,
    pub max_files: usize,
    pub max_functions_per_project: usize,
    /// Invocations of one project running at once on this instance.
    pub project_concurrency: u32,
    /// How long invocation records are kept.
    pub log_retention: Duration,
}

impl Default for FunctionLimits {
    fn default() -> FunctionLimits {
        FunctionLimits {
            default: Limits {
                memory_mb: 64,
                cpu_ms: 1_000,
                wall_ms: 30_000,
                request_bytes: 6 * 1024 * 1024,
                response_bytes: 6 * 1024 * 1024,
                concurrency: 50,
            },
            maximum: Limits {
                memory_mb: 256,
                cpu_ms: 30_000,
                wall_ms: 300_000,
                request_bytes: 32 * 1024 * 1024,
                response_bytes: 32 * 1024 * 1024,
                concurrency: 1_000,
            },
            max_bundle_bytes: 5 * 1024 * 1024,
            max_files: 200,
            max_functions_per_project: 100,
            project_concurrency: 200,
            log_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl FunctionLimits {
    /// The limits a deployment asks for, checked against the maximums.
    pub fn resolve(&self, asked: &LimitsRequest) -> Result<Limits, Error> {
        let pick = |name: &str, asked: Option<u32>, default: u32, max: u32| {
            let value = asked.unwrap_or(default);
            if value == 0 || value > max {
                return Err(Error::invalid(format!(
                    "limits.{name} must be between 1 and {max} on this instance (asked {value})"
                )));
            }
            Ok(value)
        };
        let (d, m) = (&self.default, &self.maximum);
        Ok(Limits {
            memory_mb: pick(
                "memory_mb",
                asked.memory_mb,
                d.memory_mb.min(m.memory_mb),
                m.memory_mb,
            )?,
            cpu_ms: pick("cpu_ms", asked.cpu_ms, d.cpu_ms.min(m.cpu_ms), m.cpu_ms)?,
            wall_ms: pick(
                "wall_ms",
                asked.wall_ms,
                d.wall_ms.min(m.wall_ms),
                m.wall_ms,
            )?,
            request_bytes: pick(
                "request_bytes",
                asked.request_bytes,
                d.request_bytes.min(m.request_bytes),
                m.request_bytes,
            )?,
            response_bytes: pick(
                "response_bytes",
                asked.response_bytes,
                d.response_bytes.min(m.response_bytes),
                m.response_bytes,
            )?,
            concurrency: pick(
                "concurrency",
                asked.concurrency,
                d.concurrency.min(m.concurrency),
                m.concurrency,
            )?,
        })
    }
}

/// What the bundle store keeps for a version: the sources as deployed and
/// what they compiled to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredBundle {
    pub sources: Vec<SourceFile>,
    pub compiled: Bundle,
}

/// A function with the version that serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDetail {
    #[serde(flatten)]
    pub info: FunctionInfo,
    pub version: Version,
}

/// A version's env as resolved, and when.
pub(super) type ResolvedEnv = (
    std::time::Instant,
    Arc<std::collections::BTreeMap<String, String>>,
);

/// Bundles kept in memory, by bundle id (a deployment is at most a few MiB).
const BUNDLE_CACHE_ENTRIES: usize = 512;

pub struct Functions {
    pub(super) store: Arc<dyn FunctionStore>,
    bundles: Arc<dyn BlobStore>,
    pub(super) engine: Arc<Engine>,
    pub(super) platform: Arc<dyn Platform>,
    pub(super) outbound: Arc<Outbound>,
    pub(super) limits: FunctionLimits,
    pub(super) metrics: Arc<FunctionMetrics>,
    cache: Mutex<HashMap<String, Arc<Bundle>>>,
    /// Per function version and per project: invocations running now.
    pub(super) gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Every invocation record as it is written (live logs).
    pub(super) live: broadcast::Sender<Arc<Invocation>>,
    /// The serving version of each function called lately, briefly (other
    /// instances' deploys reach this one within `invoke::SERVING_TTL`).
    pub(super) serving: Mutex<HashMap<String, (std::time::Instant, Arc<Version>)>>,
    /// Invocation records on their way to the store, written in batches.
    pub(super) log_writer: std::sync::OnceLock<tokio::sync::mpsc::Sender<Invocation>>,
    /// Resolved env (variables + secrets) per version, briefly.
    pub(super) env_cache: Mutex<HashMap<String, ResolvedEnv>>,
}

impl Functions {
    pub fn new(
        store: Arc<dyn FunctionStore>,
        bundles: Arc<dyn BlobStore>,
        engine: Arc<Engine>,
        platform: Arc<dyn Platform>,
        outbound: Arc<Outbound>,
        limits: FunctionLimits,
        metrics: Arc<FunctionMetrics>,
    ) -> Functions {
        Functions {
            store,
            bundles,
            engine,
            platform,
            outbound,
            limits,
            metrics,
            cache: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            live: broadcast::channel(1024).0,
            env_cache: Mutex::new(HashMap::new()),
            serving: Mutex::new(HashMap::new()),
            log_writer: std::sync::OnceLock::new(),
        }
    }

    pub fn limits(&self) -> &FunctionLimits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn FunctionStore> {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub async fn check(&self) -> Result<(), Error> {
        self.store.check().await?;
        self.bundles.check().await
    }

    /// Compiles and stores a new version, which serves from now on.
    pub async fn deploy(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        deployment: Deployment,
    ) -> Result<Version, Error> {
        let result = self.deploy_checked(who, project, name, deployment).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.metrics.deploys.with_label_values(&[label]).inc();
        result
    }

    async fn deploy_checked(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        deployment: Deployment,
    ) -> Result<Version, Error> {
        who.authorize(project, Access::Admin)?;
        let name = FunctionName::new(name)?;
        check_env(&deployment)?;
        check_triggers(&deployment.triggers)?;
        outbound::validate_allow_hosts(&deployment.allow_hosts)?;
        let limits = self.limits.resolve(&deployment.limits)?;
        let compiled = compile::compile(
            &deployment.files,
            deployment.entry.as_deref(),
            CompileLimits {
                max_files: self.limits.max_files,
                max_source_bytes: self.limits.max_bundle_bytes,
            },
        )?;
        if self.store.function(project, &name).await?.is_none() {
            let count = self.store.functions(project).await?.len();
            if count >= self.limits.max_functions_per_project {
                return Err(Error::QuotaExceeded(format!(
                    "project {project} has {count} functions; the limit is {}",
                    self.limits.max_functions_per_project
                )));
            }
        }
        let entry = compiled.entry.clone();
        let stored = StoredBundle {
            sources: deployment.files,
            compiled,
        };
        let bytes = serde_json::to_vec(&stored).map_err(Error::internal)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let bundle_id = random_hex(16);
        let size = bytes.len() as u64;
        let body = futures_util::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed();
        self.bundles.put(&bundle_id, body).await?;
        let version = Version {
            project: project.clone(),
            function: name.clone(),
            number: 0,
            created_at: now_millis(),
            deployed_by: who.subject.clone(),
            bundle_id: bundle_id.clone(),
            bundle_bytes: size,
            bundle_sha256: sha,
            entry,
            env: deployment.env,
            secrets: deployment.secrets,
            triggers: deployment.triggers,
            auth: deployment.auth,
            limits,
            allow_hosts: deployment.allow_hosts,
        };
        let stored = match self.store.add_version(version).await {
            Ok(stored) => stored,
            Err(e) => {
                let _ = self.bundles.delete(&bundle_id).await;
                return Err(e);
            }
        };
        self.changed(project, &name);
        Ok(stored)
    }

    pub async fn functions(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<FunctionInfo>, Error> {
        who.authorize(project, Access::Admin)?;
        self.store.functions(project).await
    }

    pub async fn function(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<FunctionDetail, Error> {
        who.authorize(project, Access::Admin)?;
        let name = FunctionName::new(name)?;
        let info = self.existing(project, &name).await?;
        let version = self.version_of(project, &name, info.active).await?;
        Ok(FunctionDetail { info, version })
    }

    pub async fn versions(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<Vec<Version>, Error> {
        who.authorize(project, Access::Admin)?;
        let name = FunctionName::new(name)?;
        self.existing(project, &name).await?;
        self.store.versions(project, &name).await
    }

    /// The sources of a version as they were deployed.
    pub async fn source(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        number: Option<u32>,
    ) -> Result<(Version, Vec<SourceFile>), Error> {
        who.authorize(project, Access::Admin)?;
        let name = FunctionName::new(name)?;
        let info = self.existing(project, &name).await?;
        let version = self
            .version_of(project, &name, number.unwrap_or(info.active))
            .await?;
        let stored = self.read_bundle(&version).await?;
        Ok((version, stored.sources))
    }

    /// Makes an earlier (or later) version the one that serves.
    pub async fn rollback(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        number: u32,
    ) -> Result<FunctionInfo, Error> {
        who.authorize(project, Access::Admin)?;
        let name = FunctionName::new(name)?;
        let info = self.store.activate(project, &name, number).await?;
        self.changed(project, &name);
        Ok(info)
    }

    /// Deletes the function and every version's bundle.
    pub async fn delete(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<(), Error> {
        who.authorize(project, Access::Admin)?;
        let name = FunctionName::new(name)?;
        let removed = self.store.delete_function(project, &name).await?;
        if removed.is_empty() {
            return Err(Error::NotFound(format!(
                "no function {name} in project {project}"
            )));
        }
        self.changed(project, &name);
        self.drop_bundles(&removed).await;
        Ok(())
    }

    /// The project's invocation records, newest first.
    pub async fn logs(
        &self,
        who: &Principal,
        project: &ProjectId,
        query: &LogQuery,
    ) -> Result<Vec<Invocation>, Error> {
        who.authorize(project, Access::Admin)?;
        self.store.invocations(project, query).await
    }

    /// Invocation records of the project as they are written (this
    /// instance's invocations).
    pub fn live_logs(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<broadcast::Receiver<Arc<Invocation>>, Error> {
        who.authorize(project, Access::Admin)?;
        Ok(self.live.subscribe())
    }

    /// Drops invocation records older than the retention.
    pub async fn prune_logs(&self) -> Result<u64, Error> {
        let cut = now_millis().saturating_sub(self.limits.log_retention.as_millis() as u64);
        self.store.prune_invocations(cut).await
    }

    /// A function changed here: its warm runtimes and cached serving
    /// version go.
    fn changed(&self, project: &ProjectId, name: &FunctionName) {
        self.engine.forget(project.as_str(), name.as_str());
        self.serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&format!("{project}/{name}"));
    }

    pub(super) async fn existing(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<FunctionInfo, Error> {
        self.store
            .function(project, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no function {name} in project {project}")))
    }

    pub(super) async fn version_of(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        number: u32,
    ) -> Result<Version, Error> {
        self.store
            .version(project, name, number)
            .await?
            .ok_or_else(|| Error::NotFound(format!("function {name} has no version {number}")))
    }

    /// The compiled bundle of a version, from memory or the bundle store.
    pub(super) async fn bundle(&self, version: &Version) -> Result<Arc<Bundle>, Error> {
        if let Some(bundle) = self.lock_cache().get(&version.bundle_id) {
            return Ok(bundle.clone());
        }
        let bundle = Arc::new(self.read_bundle(version).await?.compiled);
        let mut cache = self.lock_cache();
        if cache.len() >= BUNDLE_CACHE_ENTRIES
            && let Some(key) = cache.keys().next().cloned()
        {
            cache.remove(&key);
        }
        cache.insert(version.bundle_id.clone(), bundle.clone());
        Ok(bundle)
    }

    async fn read_bundle(&self, version: &Version) -> Result<StoredBundle, Error> {
        let mut stream = self.bundles.get(&version.bundle_id, None).await?;
        let mut bytes = Vec::with_capacity(version.bundle_bytes as usize);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
            if bytes.len() as u64 > version.bundle_bytes {
                break;
            }
        }
        if hex::encode(Sha256::digest(&bytes)) != version.bundle_sha256 {
            return Err(Error::Internal(format!(
                "the bundle of {} version {} does not match its checksum",
                version.function, version.number
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("unreadable bundle {}: {e}", version.bundle_id)))
    }

    pub(super) async fn drop_bundles(&self, versions: &[Version]) {
        for version in versions {
            self.lock_cache().remove(&version.bundle_id);
            if let Err(e) = self.bundles.delete(&version.bundle_id).await {
                tracing::warn!(bundle = %version.bundle_id, error = %e, "cannot delete a function bundle");
            }
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Bundle>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl crate::platform::ProjectData for Functions {
    fn service(&self) -> &'static str {
        "functions"
    }

    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
        let removed = self.store.forget_project(project).await?;
        let mut names: Vec<&str> = removed.iter().map(|v| v.function.as_str()).collect();
        names.dedup();
        for version in &removed {
            self.changed(project, &version.function);
        }
        self.drop_bundles(&removed).await;
        Ok(names.len() as u64)
    }
}

/// Variable names: what `ctx.env` keys should be; bounded.
fn check_env(deployment: &Deployment) -> Result<(), Error> {
    const MAX_VARS: usize = 100;
    const MAX_VALUE_BYTES: usize = 32 * 1024;
    if deployment.env.len() + deployment.secrets.len() > MAX_VARS {
        return Err(Error::invalid(format!(
            "at most {MAX_VARS} variables and secrets per function"
        )));
    }
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    for (name, value) in &deployment.env {
        if !valid(name) {
            return Err(Error::invalid(format!(
                "invalid variable name {name:?}: use letters, digits and '_', not starting with a digit"
            )));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::PayloadTooLarge(format!(
                "variable {name} is {} bytes; the limit is {MAX_VALUE_BYTES}",
                value.len()
            )));
        }
    }
    for name in &deployment.secrets {
        crate::kms::model::check_name("secret", name)?;
        if deployment.env.contains_key(name) {
            return Err(Error::invalid(format!(
                "{name} is both a variable and a secret; give it once"
            )));
        }
    }
    Ok(())
}

fn check_triggers(triggers: &[Trigger]) -> Result<(), Error> {
    const MAX_TRIGGERS: usize = 20;
    if triggers.len() > MAX_TRIGGERS {
        return Err(Error::invalid(format!(
            "at most {MAX_TRIGGERS} triggers per function"
        )));
    }
    for trigger in triggers {
        match trigger {
            Trigger::Event { topic } => {
                TopicFilter::parse(topic)?;
            }
            Trigger::Schedule { cron } => {
                Schedule::parse(cron)?;
            }
            Trigger::Document { collection } => {
                crate::docs::model::check_name("collection", collection)?;
            }
        }
    }
    let mut keys: Vec<String> = triggers.iter().map(Trigger::key).collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("a trigger is listed twice"));
    }
    Ok(())
}
