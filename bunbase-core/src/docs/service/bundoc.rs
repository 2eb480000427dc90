//! The service's state: the store, the event bus, field encryption, the
//! limits, the cache of collection definitions and the committers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::commit::Committers;
use crate::docs::crypt::FieldCrypt;
use crate::docs::metrics::DocsMetrics;
use crate::docs::model::Collection;
use crate::docs::store::{DocStore, Quota};
use crate::error::Error;
use crate::events::Events;
use crate::id::ProjectId;
use crate::kms::Keys;
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub struct DocsLimits {
    /// Most documents a query may examine without an index narrowing it.
    pub max_scan: usize,
    /// Every project's quota.
    pub quota: Quota,
    /// Most writes in one batch.
    pub max_batch: usize,
    pub max_collections: usize,
    /// How long a collection definition is used before it is read again
    /// (changes made through this instance apply at once).
    pub definition_ttl: Duration,
    /// Projects whose data key stays in memory.
    pub data_keys_cached: usize,
}

impl Default for DocsLimits {
    fn default() -> Self {
        DocsLimits {
            max_scan: 1000,
            quota: Quota {
                max_documents: 1_000_000,
                max_bytes: 1024 * 1024 * 1024,
            },
            max_batch: 500,
            max_collections: 200,
            definition_ttl: Duration::from_secs(2),
            data_keys_cached: 10_000,
        }
    }
}

/// Parsed collection definitions and when each was read.
type Definitions = HashMap<(ProjectId, String), (Instant, Arc<Collection>)>;

pub(super) struct Inner {
    pub(super) store: Arc<dyn DocStore>,
    pub(super) events: Events,
    pub(super) crypt: Option<FieldCrypt>,
    pub(super) limits: DocsLimits,
    pub(super) metrics: Arc<DocsMetrics>,
    definitions: Mutex<Definitions>,
    pub(super) committers: Committers,
}

/// Bundoc: what shells and embedders call. Cheap to clone (one shared
/// state).
#[derive(Clone)]
pub struct Bundoc {
    pub(super) inner: Arc<Inner>,
}

impl Bundoc {
    pub fn new(
        store: Arc<dyn DocStore>,
        events: Events,
        keys: Option<Arc<dyn Keys>>,
        limits: DocsLimits,
        metrics: Arc<DocsMetrics>,
    ) -> Bundoc {
        let crypt = keys.map(|k| FieldCrypt::new(k, store.clone(), limits.data_keys_cached));
        let committers = Committers::new(store.clone(), events.clone(), metrics.clone());
        Bundoc {
            inner: Arc::new(Inner {
                store,
                events,
                crypt,
                limits,
                metrics,
                definitions: Mutex::new(HashMap::new()),
                committers,
            }),
        }
    }

    pub fn limits(&self) -> DocsLimits {
        self.inner.limits
    }

    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    pub(crate) fn store(&self) -> &Arc<dyn DocStore> {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Arc<DocsMetrics> {
        &self.inner.metrics
    }

    pub async fn check(&self) -> Result<(), Error> {
        self.inner.store.check().await
    }

    /// Whether the key service for encrypted fields answers (`Ok` when
    /// none is configured).
    pub async fn check_keys(&self) -> Result<(), Error> {
        match &self.inner.crypt {
            Some(crypt) => crypt.check().await,
            None => Ok(()),
        }
    }

    /// Runs an operation and counts its outcome.
    pub(crate) async fn counted<T>(
        &self,
        op: &str,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let result = work.await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.inner
            .metrics
            .operations
            .with_label_values(&[op, label])
            .inc();
        result
    }

    /// The collection's current definition (cached briefly).
    pub(crate) async fn definition(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Arc<Collection>, Error> {
        let key = (project.clone(), name.to_string());
        {
            let cache = self.lock_definitions();
            if let Some((at, c)) = cache.get(&key)
                && at.elapsed() < self.inner.limits.definition_ttl
            {
                return Ok(c.clone());
            }
        }
        let stored = self
            .inner
            .store
            .collection(project, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no collection {name} in project {project}")))?;
        let collection = Arc::new(Collection::parse(name, &stored.definition, stored.version)?);
        self.lock_definitions()
            .insert(key, (Instant::now(), collection.clone()));
        Ok(collection)
    }

    fn lock_definitions(&self) -> std::sync::MutexGuard<'_, Definitions> {
        self.inner
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn forget_definition(&self, project: &ProjectId, name: &str) {
        self.lock_definitions()
            .remove(&(project.clone(), name.to_string()));
    }

    pub(super) fn check_encryption(&self, collection: &Collection) -> Result<(), Error> {
        if !collection.encrypted.is_empty() && self.inner.crypt.is_none() {
            return Err(Error::invalid(
                "encrypted fields need BunKMS, and this Bundoc has no key service configured",
            ));
        }
        Ok(())
    }

    /// Decrypts a stored document's encrypted fields.
    pub(crate) async fn open(
        &self,
        project: &ProjectId,
        collection: &Collection,
        doc: &mut Value,
    ) -> Result<(), Error> {
        match &self.inner.crypt {
            Some(crypt) if !collection.encrypted.is_empty() => {
                crypt.open(project, collection, doc).await
            }
            _ => Ok(()),
        }
    }
}
