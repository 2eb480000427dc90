//! Storage in memory: blobs and metadata for tests and embedders.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::Error;
use crate::id::ProjectId;
use crate::storage::blob::{BlobStore, ByteRange, ByteStream};
use crate::storage::meta::MetaStore;
use crate::storage::model::{
    Bucket, ObjectInfo, Part, PutCondition, Quota, S3Credential, Upload, Usage,
};

/// Blobs in memory.
#[derive(Default)]
pub struct MemoryBlobs {
    blobs: Mutex<HashMap<String, Bytes>>,
    /// Upload handle → parts by number.
    uploads: Mutex<HashMap<String, BTreeMap<u32, Bytes>>>,
}

impl MemoryBlobs {
    pub fn new() -> MemoryBlobs {
        MemoryBlobs::default()
    }

    /// How many blobs it holds (tests check nothing leaks).
    pub fn len(&self) -> usize {
        self.blobs.lock().map(|b| b.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn collect(mut body: ByteStream) -> Result<Bytes, Error> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out.freeze())
}

fn poisoned() -> Error {
    Error::internal("storage memory store lock poisoned")
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn put(&self, id: &str, body: ByteStream) -> Result<u64, Error> {
        let bytes = collect(body).await?;
        let len = bytes.len() as u64;
        self.blobs
            .lock()
            .map_err(|_| poisoned())?
            .insert(id.to_string(), bytes);
        Ok(len)
    }

    async fn get(&self, id: &str, range: Option<ByteRange>) -> Result<ByteStream, Error> {
        let bytes = self
            .blobs
            .lock()
            .map_err(|_| poisoned())?
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("blob {id} not found")))?;
        let bytes = match range {
            Some(r) if r.end < bytes.len() as u64 => bytes.slice(r.start as usize..=r.end as usize),
            Some(_) => return Err(Error::invalid("range beyond the blob")),
            None => bytes,
        };
        Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])))
    }

    async fn delete(&self, id: &str) -> Result<(), Error> {
        self.blobs.lock().map_err(|_| poisoned())?.remove(id);
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        let mut blobs = self.blobs.lock().map_err(|_| poisoned())?;
        let bytes = blobs
            .get(from)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("blob {from} not found")))?;
        blobs.insert(to.to_string(), bytes);
        Ok(())
    }

    async fn begin_parts(&self, id: &str) -> Result<String, Error> {
        let handle = format!("{id}.{}", crate::id::random_hex(8));
        self.uploads
            .lock()
            .map_err(|_| poisoned())?
            .insert(handle.clone(), BTreeMap::new());
        Ok(handle)
    }

    async fn put_part(
        &self,
        _id: &str,
        handle: &str,
        number: u32,
        body: ByteStream,
    ) -> Result<String, Error> {
        let bytes = collect(body).await?;
        let mut uploads = self.uploads.lock().map_err(|_| poisoned())?;
        let parts = uploads
            .get_mut(handle)
            .ok_or_else(|| Error::NotFound(format!("upload {handle} not found")))?;
        parts.insert(number, bytes);
        Ok(number.to_string())
    }

    async fn complete_parts(
        &self,
        id: &str,
        handle: &str,
        parts: &[(u32, String)],
    ) -> Result<(), Error> {
        let mut uploads = self.uploads.lock().map_err(|_| poisoned())?;
        let stored = uploads
            .get(handle)
            .ok_or_else(|| Error::NotFound(format!("upload {handle} not found")))?;
        let mut whole = BytesMut::new();
        for (number, _) in parts {
            let part = stored
                .get(number)
                .ok_or_else(|| Error::invalid(format!("part {number} was not uploaded")))?;
            whole.extend_from_slice(part);
        }
        uploads.remove(handle);
        drop(uploads);
        self.blobs
            .lock()
            .map_err(|_| poisoned())?
            .insert(id.to_string(), whole.freeze());
        Ok(())
    }

    async fn abort_parts(&self, _id: &str, handle: &str) -> Result<(), Error> {
        self.uploads.lock().map_err(|_| poisoned())?.remove(handle);
        Ok(())
    }
}

#[derive(Default)]
struct Project {
    buckets: BTreeMap<String, Bucket>,
    /// (bucket, key) → object.
    objects: BTreeMap<(String, String), ObjectInfo>,
    uploads: BTreeMap<String, (Upload, BTreeMap<u32, Part>)>,
    usage: Usage,
}

/// Metadata in memory.
#[derive(Default)]
pub struct MemoryMeta {
    projects: Mutex<HashMap<ProjectId, Project>>,
    credentials: Mutex<BTreeMap<String, S3Credential>>,
}

impl MemoryMeta {
    pub fn new() -> MemoryMeta {
        MemoryMeta::default()
    }

    fn with<T>(&self, project: &ProjectId, f: impl FnOnce(&mut Project) -> T) -> Result<T, Error> {
        let mut projects = self.projects.lock().map_err(|_| poisoned())?;
        Ok(f(projects.entry(project.clone()).or_default()))
    }
}

/// The usage after replacing `old` by `new`, if within `quota`.
pub(crate) fn usage_after(
    usage: Usage,
    old: Option<&ObjectInfo>,
    new: &ObjectInfo,
    quota: Quota,
) -> Result<Usage, Error> {
    let (old_bytes, old_objects) = old.map_or((0, 0), |o| (o.size, 1));
    let next = Usage {
        bytes: usage.bytes - old_bytes.min(usage.bytes) + new.size,
        objects: usage.objects - old_objects.min(usage.objects) + 1,
    };
    if next.bytes > quota.max_bytes && next.bytes > usage.bytes {
        return Err(Error::QuotaExceeded(format!(
            "the project's storage quota is {} bytes and {} are used: nothing was stored",
            quota.max_bytes, usage.bytes
        )));
    }
    if next.objects > quota.max_objects && next.objects > usage.objects {
        return Err(Error::QuotaExceeded(format!(
            "the project may store {} objects and holds {}: nothing was stored",
            quota.max_objects, usage.objects
        )));
    }
    Ok(next)
}

#[async_trait]
impl MetaStore for MemoryMeta {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
        self.with(&bucket.project, |p| {
            if p.buckets.contains_key(&bucket.name) {
                return Err(Error::AlreadyExists(format!(
                    "bucket {} already exists",
                    bucket.name
                )));
            }
            p.buckets.insert(bucket.name.clone(), bucket.clone());
            Ok(())
        })?
    }

    async fn bucket(&self, project: &ProjectId, name: &str) -> Result<Option<Bucket>, Error> {
        self.with(project, |p| p.buckets.get(name).cloned())
    }

    async fn buckets(&self, project: &ProjectId) -> Result<Vec<Bucket>, Error> {
        self.with(project, |p| p.buckets.values().cloned().collect())
    }

    async fn update_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
        self.with(&bucket.project, |p| match p.buckets.get_mut(&bucket.name) {
            Some(stored) => {
                *stored = bucket.clone();
                Ok(())
            }
            None => Err(Error::NotFound(format!("bucket {} not found", bucket.name))),
        })?
    }

    async fn delete_bucket(&self, project: &ProjectId, name: &str) -> Result<bool, Error> {
        self.with(project, |p| {
            let holds = p.objects.keys().any(|(b, _)| b == name)
                || p.uploads.values().any(|(u, _)| u.bucket == name);
            if holds {
                return Err(Error::Conflict(format!(
                    "bucket {name} is not empty: delete its objects first, or pass force=true"
                )));
            }
            Ok(p.buckets.remove(name).is_some())
        })?
    }

    async fn object(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectInfo>, Error> {
        self.with(project, |p| {
            p.objects
                .get(&(bucket.to_string(), key.to_string()))
                .cloned()
        })
    }

    async fn put_object(
        &self,
        project: &ProjectId,
        object: &ObjectInfo,
        condition: PutCondition,
        quota: Quota,
    ) -> Result<Option<ObjectInfo>, Error> {
        self.with(project, |p| {
            if !p.buckets.contains_key(&object.bucket) {
                return Err(Error::NotFound(format!(
                    "bucket {} not found",
                    object.bucket
                )));
            }
            let at = (object.bucket.clone(), object.key.clone());
            let old = p.objects.get(&at);
            if old.is_some() && condition == PutCondition::IfAbsent {
                return Err(Error::Conflict(format!(
                    "an object exists at {}: nothing was stored",
                    object.key
                )));
            }
            p.usage = usage_after(p.usage, old, object, quota)?;
            Ok(p.objects.insert(at, object.clone()))
        })?
    }

    async fn delete_object(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectInfo>, Error> {
        self.with(project, |p| {
            let removed = p.objects.remove(&(bucket.to_string(), key.to_string()));
            if let Some(o) = &removed {
                p.usage.bytes = p.usage.bytes.saturating_sub(o.size);
                p.usage.objects = p.usage.objects.saturating_sub(1);
            }
            removed
        })
    }

    async fn list_objects(
        &self,
        project: &ProjectId,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, Error> {
        self.with(project, |p| {
            // From the later of the cursor and the prefix: a cursor before
            // the prefix must not end the scan at the first other key.
            let from = match after {
                Some(after) if after > prefix => after,
                _ => prefix,
            };
            let start = (bucket.to_string(), from.to_string());
            p.objects
                .range(start..)
                .filter(|((_, key), _)| Some(key.as_str()) != after)
                .take_while(|((b, key), _)| b == bucket && key.starts_with(prefix))
                .take(limit)
                .map(|(_, o)| o.clone())
                .collect()
        })
    }

    async fn usage(&self, project: &ProjectId) -> Result<Usage, Error> {
        self.with(project, |p| p.usage)
    }

    async fn create_upload(&self, project: &ProjectId, upload: &Upload) -> Result<(), Error> {
        self.with(project, |p| {
            if p.uploads.contains_key(&upload.id) {
                return Err(Error::AlreadyExists(format!("upload {} exists", upload.id)));
            }
            p.uploads
                .insert(upload.id.clone(), (upload.clone(), BTreeMap::new()));
            Ok(())
        })?
    }

    async fn upload(&self, project: &ProjectId, id: &str) -> Result<Option<Upload>, Error> {
        self.with(project, |p| p.uploads.get(id).map(|(u, _)| u.clone()))
    }

    async fn uploads(&self, project: &ProjectId, bucket: &str) -> Result<Vec<Upload>, Error> {
        self.with(project, |p| {
            let mut out: Vec<Upload> = p
                .uploads
                .values()
                .filter(|(u, _)| u.bucket == bucket)
                .map(|(u, _)| u.clone())
                .collect();
            out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            out
        })
    }

    async fn put_part(&self, project: &ProjectId, upload: &str, part: &Part) -> Result<(), Error> {
        self.with(project, |p| match p.uploads.get_mut(upload) {
            Some((_, parts)) => {
                parts.insert(part.number, part.clone());
                Ok(())
            }
            None => Err(Error::NotFound(format!("upload {upload} not found"))),
        })?
    }

    async fn parts(&self, project: &ProjectId, upload: &str) -> Result<Vec<Part>, Error> {
        self.with(project, |p| {
            p.uploads
                .get(upload)
                .map(|(_, parts)| parts.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    async fn delete_upload(&self, project: &ProjectId, id: &str) -> Result<bool, Error> {
        self.with(project, |p| p.uploads.remove(id).is_some())
    }

    async fn uploads_started_before(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, Upload)>, Error> {
        let projects = self.projects.lock().map_err(|_| poisoned())?;
        let mut out: Vec<(ProjectId, Upload)> = projects
            .iter()
            .flat_map(|(id, p)| {
                p.uploads
                    .values()
                    .filter(|(u, _)| u.created_at < before)
                    .map(|(u, _)| (id.clone(), u.clone()))
            })
            .collect();
        out.sort_by_key(|(_, u)| u.created_at);
        out.truncate(limit);
        Ok(out)
    }

    async fn create_credential(&self, credential: &S3Credential) -> Result<(), Error> {
        let mut all = self.credentials.lock().map_err(|_| poisoned())?;
        if all.contains_key(&credential.access_key_id) {
            return Err(Error::AlreadyExists("access key id taken".into()));
        }
        all.insert(credential.access_key_id.clone(), credential.clone());
        Ok(())
    }

    async fn credential(&self, access_key_id: &str) -> Result<Option<S3Credential>, Error> {
        Ok(self
            .credentials
            .lock()
            .map_err(|_| poisoned())?
            .get(access_key_id)
            .cloned())
    }

    async fn credentials(&self, project: &ProjectId) -> Result<Vec<S3Credential>, Error> {
        let mut out: Vec<S3Credential> = self
            .credentials
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .filter(|c| &c.project == project)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.access_key_id).cmp(&(b.created_at, &b.access_key_id)));
        Ok(out)
    }

    async fn delete_credential(
        &self,
        project: &ProjectId,
        access_key_id: &str,
    ) -> Result<bool, Error> {
        let mut all = self.credentials.lock().map_err(|_| poisoned())?;
        if all
            .get(access_key_id)
            .is_some_and(|c| &c.project == project)
        {
            all.remove(access_key_id);
            return Ok(true);
        }
        Ok(false)
    }
}
