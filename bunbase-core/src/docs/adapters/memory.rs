//! Documents in memory: ordered maps under one lock, for tests and
//! embedders that need no persistence.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::docs::store::{
    Batch, DocStore, EntriesOf, Expect, KeyRange, Refusal, StoredCollection, Usage, Write,
};
use crate::error::Error;
use crate::id::ProjectId;

#[derive(Default, Clone)]
struct Collection {
    definition: Value,
    version: u64,
    documents: BTreeMap<String, Value>,
    /// Index name → key → document id.
    indexes: HashMap<String, BTreeMap<Vec<u8>, String>>,
}

#[derive(Default, Clone)]
struct Project {
    collections: BTreeMap<String, Collection>,
    usage: Usage,
    data_key: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct MemoryDocStore {
    projects: Mutex<HashMap<ProjectId, Project>>,
}

impl MemoryDocStore {
    pub fn new() -> MemoryDocStore {
        MemoryDocStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<ProjectId, Project>) -> T) -> T {
        let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut projects)
    }

    fn read<T>(
        &self,
        project: &ProjectId,
        collection: &str,
        f: impl FnOnce(&Collection) -> T,
    ) -> Option<T> {
        self.with(|projects| {
            projects
                .get(project)
                .and_then(|p| p.collections.get(collection))
                .map(f)
        })
    }
}

fn size(doc: &Value) -> u64 {
    serde_json::to_vec(doc).map_or(0, |v| v.len() as u64)
}

/// Checks a batch against the stored collection — versions, unique keys,
/// quota — and returns the project's usage after it; nothing changes.
/// (The service never puts one id twice in a batch.)
fn check(collection: &Collection, usage: Usage, batch: &Batch) -> Result<Usage, Refusal> {
    let mut after = usage;
    let mut removed = HashSet::new();
    let mut added = HashSet::new();
    for write in &batch.writes {
        let stored = collection.documents.get(&write.id);
        match (write.expect, stored) {
            (Expect::Absent, None) => {}
            (Expect::Version(v), Some(doc)) if doc["_version"].as_u64() == Some(v) => {}
            _ => {
                return Err(Refusal::Changed {
                    id: write.id.clone(),
                });
            }
        }
        if let Some(old) = stored {
            after.documents -= 1;
            after.bytes -= size(old);
        }
        if let Some(doc) = &write.doc {
            after.documents += 1;
            after.bytes += size(doc);
        }
        removed.extend(write.remove.iter().map(|e| (&e.index, &e.key)));
    }
    for entry in batch.writes.iter().flat_map(|w| &w.add) {
        let taken = collection
            .indexes
            .get(&entry.index)
            .is_some_and(|i| i.contains_key(&entry.key))
            && !removed.contains(&(&entry.index, &entry.key));
        if taken || !added.insert((&entry.index, &entry.key)) {
            return Err(Refusal::Duplicate {
                index: entry.index.clone(),
            });
        }
    }
    if let Some(quota) = batch.quota {
        let grows = after.documents > usage.documents || after.bytes > usage.bytes;
        if grows && (after.documents > quota.max_documents || after.bytes > quota.max_bytes) {
            return Err(Refusal::Quota(quota_message(after, quota)));
        }
    }
    Ok(after)
}

pub(crate) fn quota_message(after: Usage, quota: crate::docs::store::Quota) -> String {
    format!(
        "the project would store {} documents, {} bytes; its quota is {} documents, {} bytes",
        after.documents, after.bytes, quota.max_documents, quota.max_bytes
    )
}

fn apply(collection: &mut Collection, write: &Write) {
    for entry in &write.remove {
        if let Some(index) = collection.indexes.get_mut(&entry.index) {
            index.remove(&entry.key);
        }
    }
    for entry in &write.add {
        collection
            .indexes
            .entry(entry.index.clone())
            .or_default()
            .insert(entry.key.clone(), write.id.clone());
    }
    match &write.doc {
        Some(doc) => collection.documents.insert(write.id.clone(), doc.clone()),
        None => collection.documents.remove(&write.id),
    };
}

#[async_trait]
impl DocStore for MemoryDocStore {
    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn put_collection(
        &self,
        project: &ProjectId,
        name: &str,
        definition: &Value,
        expect: Expect,
        drop: &[String],
        build: Option<EntriesOf<'_>>,
    ) -> Result<(), Refusal> {
        self.with(|projects| {
            let project = projects.entry(project.clone()).or_default();
            let stored = project.collections.get(name);
            let mut collection = match (expect, stored) {
                (Expect::Absent, None) => Collection {
                    version: 0,
                    ..Default::default()
                },
                (Expect::Version(v), Some(c)) if c.version == v => c.clone(),
                _ => {
                    return Err(Refusal::Changed {
                        id: name.to_string(),
                    });
                }
            };
            for index in drop {
                collection.indexes.remove(index);
            }
            if let Some(build) = build {
                for (id, doc) in &collection.documents {
                    for entry in build(doc)? {
                        let index = collection.indexes.entry(entry.index.clone()).or_default();
                        if index.insert(entry.key, id.clone()).is_some() {
                            return Err(Refusal::Duplicate { index: entry.index });
                        }
                    }
                }
            }
            collection.definition = definition.clone();
            collection.version += 1;
            project.collections.insert(name.to_string(), collection);
            Ok(())
        })
    }

    async fn collection(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Option<StoredCollection>, Error> {
        Ok(self.read(project, name, |c| StoredCollection {
            name: name.to_string(),
            definition: c.definition.clone(),
            version: c.version,
        }))
    }

    async fn collections(&self, project: &ProjectId) -> Result<Vec<StoredCollection>, Error> {
        Ok(self.with(|projects| {
            projects.get(project).map_or_else(Vec::new, |p| {
                p.collections
                    .iter()
                    .map(|(name, c)| StoredCollection {
                        name: name.clone(),
                        definition: c.definition.clone(),
                        version: c.version,
                    })
                    .collect()
            })
        }))
    }

    async fn delete_collection(&self, project: &ProjectId, name: &str) -> Result<bool, Error> {
        Ok(self.with(|projects| {
            let Some(project) = projects.get_mut(project) else {
                return false;
            };
            let Some(collection) = project.collections.remove(name) else {
                return false;
            };
            for doc in collection.documents.values() {
                project.usage.documents -= 1;
                project.usage.bytes -= size(doc);
            }
            true
        }))
    }

    async fn commit(&self, project: &ProjectId, batches: &[Batch]) -> Vec<Result<(), Refusal>> {
        self.with(|projects| {
            let stored = projects.entry(project.clone()).or_default();
            batches
                .iter()
                .map(|batch| {
                    let Some(collection) = stored.collections.get_mut(&batch.collection) else {
                        return Err(Refusal::Failed(Error::NotFound(format!(
                            "no collection {}",
                            batch.collection
                        ))));
                    };
                    if collection.version != batch.collection_version {
                        return Err(Refusal::Stale);
                    }
                    stored.usage = check(collection, stored.usage, batch)?;
                    for write in &batch.writes {
                        apply(collection, write);
                    }
                    Ok(())
                })
                .collect()
        })
    }

    async fn get(
        &self,
        project: &ProjectId,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>, Error> {
        Ok(self
            .read(project, collection, |c| c.documents.get(id).cloned())
            .flatten())
    }

    async fn get_many(
        &self,
        project: &ProjectId,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<Value>, Error> {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort();
        ids.dedup();
        Ok(self
            .read(project, collection, |c| {
                ids.iter()
                    .filter_map(|id| c.documents.get(*id).cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn scan(
        &self,
        project: &ProjectId,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Value>, Error> {
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_string()));
        Ok(self
            .read(project, collection, |c| {
                c.documents
                    .range((lower, Bound::Unbounded))
                    .take(limit)
                    .map(|(_, d)| d.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn scan_index(
        &self,
        project: &ProjectId,
        collection: &str,
        index: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>, Error> {
        Ok(self
            .read(project, collection, |c| {
                let Some(entries) = c.indexes.get(index) else {
                    return Vec::new();
                };
                let bounds = (range.lower.clone(), range.upper.clone());
                if is_empty(&bounds) {
                    return Vec::new();
                }
                let found = |(key, id): (&Vec<u8>, &String)| {
                    c.documents.get(id).map(|d| (key.clone(), d.clone()))
                };
                if range.reverse {
                    entries
                        .range(bounds)
                        .rev()
                        .filter_map(found)
                        .take(limit)
                        .collect()
                } else {
                    entries
                        .range(bounds)
                        .filter_map(found)
                        .take(limit)
                        .collect()
                }
            })
            .unwrap_or_default())
    }

    async fn usage(&self, project: &ProjectId) -> Result<Usage, Error> {
        Ok(self.with(|projects| projects.get(project).map(|p| p.usage).unwrap_or_default()))
    }

    async fn data_key(&self, project: &ProjectId) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.with(|projects| projects.get(project).and_then(|p| p.data_key.clone())))
    }

    async fn put_data_key(&self, project: &ProjectId, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.with(|projects| {
            projects
                .entry(project.clone())
                .or_default()
                .data_key
                .get_or_insert_with(|| sealed.to_vec())
                .clone()
        }))
    }
}

/// BTreeMap::range panics on inverted or empty-excluded bounds; such a
/// range holds nothing.
fn is_empty(bounds: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> bool {
    use Bound::{Excluded, Included};
    match bounds {
        (Included(l), Included(u)) => l > u,
        (Included(l), Excluded(u)) | (Excluded(l), Included(u)) => l >= u,
        (Excluded(l), Excluded(u)) => l >= u,
        _ => false,
    }
}
