//! Field encryption: a collection's `encrypted` fields are stored as
//! AES-256-GCM ciphertext under the project's data key. The data key is
//! made by BunKMS (through the [`Keys`] trait, under the project's KMS key
//! `bundoc`) and stored sealed in the document store; its plaintext stays
//! in a bounded in-memory cache. Rotating the KMS key leaves the sealed
//! data key opening (old key versions keep decrypting), and re-wrapping
//! BunKMS under a new master key never touches it.
//!
//! A stored value is `"bdenc1:" + base64(nonce || ciphertext)` of the
//! field's JSON, bound (AAD) to project, collection, `_id` and path, so a
//! ciphertext copied to another document or field does not open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::model::Collection;
use super::path::Path;
use super::store::DocStore;
use crate::error::Error;
use crate::id::ProjectId;
use crate::kms::Keys;
use crate::kms::crypto::{self, Material};

/// The KMS key each project's data key is sealed under.
pub const KMS_KEY: &str = "bundoc";
const PREFIX: &str = "bdenc1:";
const NONCE_LEN: usize = 12;

pub struct FieldCrypt {
    keys: Arc<dyn Keys>,
    store: Arc<dyn DocStore>,
    cache: Mutex<HashMap<ProjectId, Arc<Material>>>,
    max_cached: usize,
}

/// The value at `path`, for changing it.
fn get_mut<'a>(doc: &'a mut Value, path: &Path) -> Option<&'a mut Value> {
    let mut at = doc;
    for segment in path.segments() {
        at = match at {
            Value::Object(map) => map.get_mut(segment)?,
            Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn aad(project: &ProjectId, collection: &str, id: &str, path: &Path) -> Vec<u8> {
    format!(
        "bundoc\0{project}\0{collection}\0{id}\0{}",
        path.as_string()
    )
    .into_bytes()
}

impl FieldCrypt {
    pub fn new(keys: Arc<dyn Keys>, store: Arc<dyn DocStore>, max_cached: usize) -> FieldCrypt {
        FieldCrypt {
            keys,
            store,
            cache: Mutex::new(HashMap::new()),
            max_cached: max_cached.max(1),
        }
    }

    /// Whether BunKMS answers.
    pub async fn check(&self) -> Result<(), Error> {
        self.keys.check().await
    }

    fn cached(&self, project: &ProjectId) -> Option<Arc<Material>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(project).cloned()
    }

    /// The project's data key: cached, or opened from the store, or made
    /// (the first instance to store one wins; the others use it).
    async fn key(&self, project: &ProjectId) -> Result<Arc<Material>, Error> {
        if let Some(key) = self.cached(project) {
            return Ok(key);
        }
        self.fetch(project).await.map_err(|e| match e {
            // Bundoc's own credential, not the caller's: an outage to
            // the caller, a configuration error to the operator.
            Error::Unauthenticated(m) | Error::PermissionDenied(m) => {
                tracing::error!(%project, "BunKMS refused Bundoc's credential: {m}");
                Error::Unavailable(format!(
                    "field encryption is unavailable: BunKMS refused Bundoc's credential ({m})"
                ))
            }
            other => other,
        })
    }

    async fn fetch(&self, project: &ProjectId) -> Result<Arc<Material>, Error> {
        let context = format!("bundoc:{project}");
        let sealed = match self.store.data_key(project).await? {
            Some(sealed) => sealed,
            None => {
                self.keys.ensure_key(project, KMS_KEY).await?;
                let made = self
                    .keys
                    .generate_data_key(project, KMS_KEY, context.as_bytes())
                    .await?;
                self.store.put_data_key(project, &made.sealed).await?
            }
        };
        let key = Arc::new(
            self.keys
                .decrypt_data_key(project, &sealed, context.as_bytes())
                .await?,
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.max_cached {
            // Any one goes: a miss costs one BunKMS call.
            if let Some(evicted) = cache.keys().next().cloned() {
                cache.remove(&evicted);
            }
        }
        cache.insert(project.clone(), key.clone());
        Ok(key)
    }

    /// Replaces the collection's encrypted fields of `doc` by ciphertext.
    pub async fn seal(
        &self,
        project: &ProjectId,
        collection: &Collection,
        doc: &mut Value,
    ) -> Result<(), Error> {
        if collection.encrypted.is_empty() {
            return Ok(());
        }
        let id = doc["_id"].as_str().unwrap_or_default().to_string();
        let present: Vec<&Path> = collection
            .encrypted
            .iter()
            .filter(|p| p.get(doc).is_some())
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        let key = self.key(project).await?;
        for path in present {
            if let Some(value) = get_mut(doc, path) {
                let plaintext = value.to_string();
                let (nonce, sealed) = crypto::seal(
                    &key,
                    &aad(project, &collection.name, &id, path),
                    plaintext.as_bytes(),
                )?;
                let mut raw = nonce.to_vec();
                raw.extend_from_slice(&sealed);
                *value = Value::String(format!("{PREFIX}{}", STANDARD.encode(raw)));
            }
        }
        Ok(())
    }

    /// Replaces ciphertext in `doc`'s encrypted fields by the values.
    pub async fn open(
        &self,
        project: &ProjectId,
        collection: &Collection,
        doc: &mut Value,
    ) -> Result<(), Error> {
        let id = doc["_id"].as_str().unwrap_or_default().to_string();
        let sealed: Vec<&Path> = collection
            .encrypted
            .iter()
            .filter(|p| {
                p.get(doc)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with(PREFIX))
            })
            .collect();
        if sealed.is_empty() {
            return Ok(());
        }
        let key = self.key(project).await?;
        let damaged = |path: &Path| {
            Error::internal(format!(
                "encrypted field {} of {}/{id} does not open",
                path.as_string(),
                collection.name
            ))
        };
        for path in sealed {
            let Some(value) = get_mut(doc, path) else {
                continue;
            };
            let text = value.as_str().unwrap_or_default();
            let raw = STANDARD
                .decode(&text[PREFIX.len()..])
                .map_err(|_| damaged(path))?;
            if raw.len() < NONCE_LEN {
                return Err(damaged(path));
            }
            let (nonce, body) = raw.split_at(NONCE_LEN);
            let plain = crypto::open(
                &key,
                nonce,
                &aad(project, &collection.name, &id, path),
                body,
            )
            .map_err(|_| damaged(path))?;
            *value = serde_json::from_slice(&plain).map_err(|_| damaged(path))?;
        }
        Ok(())
    }
}
