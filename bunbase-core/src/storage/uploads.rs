//! Multipart uploads, as S3 has them: create, upload parts (each at least
//! 5 MiB but the last), complete with the list of parts, or abort. The
//! parts go to the blob store's own multipart mechanism, so an object of
//! many GiB is never held in memory or copied through this process twice.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::Value;

use super::access::{self, Actor, RuleOp};
use super::blob::ByteStream;
use super::model::{
    MAX_PART_NUMBER, MIN_PART_SIZE, ObjectInfo, ObjectPath, Part, PutCondition, Upload,
    validate_content_type, validate_metadata,
};
use super::service::Storage;
use super::tally::tallied;
use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::id::{ProjectId, now_millis, random_hex};

/// A part being uploaded: its number and, when known, its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartIn {
    pub number: u32,
    pub length: Option<u64>,
}

/// A part named in a completion: its number and the ETag its upload
/// answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
}

impl Storage {
    /// The upload, checked to be the project's and at `at`.
    async fn upload_at(
        &self,
        project: &ProjectId,
        at: &ObjectPath,
        id: &str,
    ) -> Result<Upload, Error> {
        let missing = || Error::NotFound(format!("upload {id} not found"));
        if id.len() > 64 {
            return Err(missing());
        }
        let upload = self
            .inner
            .meta
            .upload(project, id)
            .await?
            .ok_or_else(missing)?;
        if upload.bucket != at.bucket || upload.key != at.key {
            return Err(missing());
        }
        Ok(upload)
    }

    fn multipart_actor<'a>(
        &self,
        who: &'a Principal,
        project: &ProjectId,
    ) -> Result<Actor<'a>, Error> {
        // Multipart is for servers and tools (the S3 API, SDKs): rules
        // don't see a size until the end, so end users upload in one piece.
        who.authorize(project, Access::Write)?;
        Ok(Actor::Principal(who))
    }

    pub async fn create_upload(
        &self,
        who: &Principal,
        project: &ProjectId,
        at: &ObjectPath,
        content_type: Option<String>,
        metadata: BTreeMap<String, String>,
    ) -> Result<Upload, Error> {
        self.recorded("create_upload", async {
            let actor = self.multipart_actor(who, project)?;
            let bucket = self.existing_bucket(project, &at.bucket).await?;
            let gate = access::gate(actor, project, &bucket, RuleOp::Write)?;
            let content_type = content_type.unwrap_or_else(|| "application/octet-stream".into());
            validate_content_type(&content_type)?;
            validate_metadata(&metadata)?;
            if !bucket.settings.accepts(&content_type) {
                return Err(Error::invalid(format!(
                    "bucket {} does not take {content_type}",
                    bucket.name
                )));
            }
            access::check(&gate, &bucket, RuleOp::Write, &Value::Null, &Value::Null)?;
            let blob = random_hex(16);
            let token = self.inner.blobs.begin_parts(&blob).await?;
            let upload = Upload {
                id: random_hex(16),
                bucket: at.bucket.clone(),
                key: at.key.clone(),
                content_type,
                metadata,
                owner: gate.owner(),
                created_at: now_millis(),
                blob,
                token,
            };
            if let Err(e) = self.inner.meta.create_upload(project, &upload).await {
                let _ = self
                    .inner
                    .blobs
                    .abort_parts(&upload.blob, &upload.token)
                    .await;
                return Err(e);
            }
            Ok(upload)
        })
        .await
    }

    pub async fn upload_part(
        &self,
        who: &Principal,
        project: &ProjectId,
        at: &ObjectPath,
        upload_id: &str,
        part: PartIn,
        body: ByteStream,
    ) -> Result<Part, Error> {
        let PartIn { number, length } = part;
        self.recorded("upload_part", async {
            self.multipart_actor(who, project)?;
            if !(1..=MAX_PART_NUMBER).contains(&number) {
                return Err(Error::invalid(format!(
                    "part numbers are 1 to {MAX_PART_NUMBER}"
                )));
            }
            let upload = self.upload_at(project, at, upload_id).await?;
            let bucket = self.existing_bucket(project, &at.bucket).await?;
            let max = self
                .max_object_size(&bucket)
                .min(self.inner.limits.max_part_size);
            if length.is_some_and(|l| l > max) {
                return Err(Error::PayloadTooLarge(format!(
                    "parts here are at most {max} bytes (objects: the bucket's and the instance's limit; parts: {} bytes)",
                    self.inner.limits.max_part_size
                )));
            }
            let (stream, tally) = tallied(body, length, max);
            let receipt = self
                .inner
                .blobs
                .put_part(&upload.blob, &upload.token, number, stream)
                .await?;
            let (size, etag) = tally.finish().await?;
            self.inner.metrics.bytes_in.inc_by(size);
            let part = Part {
                number,
                size,
                etag,
                receipt,
            };
            self.inner.meta.put_part(project, upload_id, &part).await?;
            Ok(part)
        })
        .await
    }

    /// An upload in progress in `bucket`.
    pub async fn upload(
        &self,
        who: &Principal,
        project: &ProjectId,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Upload, Error> {
        self.multipart_actor(who, project)?;
        let missing = || Error::NotFound(format!("upload {upload_id} not found"));
        let upload = self
            .inner
            .meta
            .upload(project, upload_id)
            .await?
            .ok_or_else(missing)?;
        if upload.bucket != bucket {
            return Err(missing());
        }
        Ok(upload)
    }

    /// The parts received so far.
    pub async fn parts(
        &self,
        who: &Principal,
        project: &ProjectId,
        at: &ObjectPath,
        upload_id: &str,
    ) -> Result<Vec<Part>, Error> {
        self.multipart_actor(who, project)?;
        self.upload_at(project, at, upload_id).await?;
        self.inner.meta.parts(project, upload_id).await
    }

    /// Uploads in progress in a bucket.
    pub async fn uploads(
        &self,
        who: &Principal,
        project: &ProjectId,
        bucket: &str,
    ) -> Result<Vec<Upload>, Error> {
        self.multipart_actor(who, project)?;
        self.existing_bucket(project, bucket).await?;
        self.inner.meta.uploads(project, bucket).await
    }

    pub async fn complete_upload(
        &self,
        who: &Principal,
        project: &ProjectId,
        at: &ObjectPath,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<ObjectInfo, Error> {
        self.recorded("complete_upload", async {
            let actor = self.multipart_actor(who, project)?;
            let upload = self.upload_at(project, at, upload_id).await?;
            let bucket = self.existing_bucket(project, &at.bucket).await?;
            let stored: BTreeMap<u32, Part> = self
                .inner
                .meta
                .parts(project, upload_id)
                .await?
                .into_iter()
                .map(|p| (p.number, p))
                .collect();
            let chosen = chosen_parts(parts, &stored)?;
            let size: u64 = chosen.iter().map(|p| p.size).sum();
            let max = self.max_object_size(&bucket);
            if size > max {
                return Err(Error::PayloadTooLarge(format!(
                    "objects here are at most {max} bytes and the parts make {size}"
                )));
            }
            let gate = access::gate(actor, project, &bucket, RuleOp::Write)?;
            let existing = self.inner.meta.object(project, &at.bucket, &at.key).await?;
            // Before the parts are assembled: refused, the upload stays.
            self.check_quota(
                project,
                size,
                existing.as_ref(),
                "the upload is kept: abort it or free space",
            )
            .await?;
            let receipts: Vec<(u32, String)> = chosen
                .iter()
                .map(|p| (p.number, p.receipt.clone()))
                .collect();
            self.inner
                .blobs
                .complete_parts(&upload.blob, &upload.token, &receipts)
                .await?;
            self.inner.meta.delete_upload(project, upload_id).await?;
            let info = ObjectInfo {
                bucket: at.bucket.clone(),
                key: at.key.clone(),
                size,
                etag: multipart_etag(&chosen),
                content_type: upload.content_type.clone(),
                metadata: upload.metadata.clone(),
                owner: gate.owner().or(upload.owner.clone()),
                last_modified: now_millis(),
                blob: upload.blob.clone(),
            };
            self.commit(project, info, PutCondition::Any).await
        })
        .await
    }

    pub async fn abort_upload(
        &self,
        who: &Principal,
        project: &ProjectId,
        at: &ObjectPath,
        upload_id: &str,
    ) -> Result<(), Error> {
        self.recorded("abort_upload", async {
            self.multipart_actor(who, project)?;
            let upload = self.upload_at(project, at, upload_id).await?;
            self.drop_upload(project, &upload).await
        })
        .await
    }

    pub(crate) async fn drop_upload(
        &self,
        project: &ProjectId,
        upload: &Upload,
    ) -> Result<(), Error> {
        self.inner
            .blobs
            .abort_parts(&upload.blob, &upload.token)
            .await?;
        self.inner.meta.delete_upload(project, &upload.id).await?;
        Ok(())
    }

    /// Aborts uploads idle past the expiry: how many.
    pub async fn expire_uploads(&self) -> Result<usize, Error> {
        let before = now_millis().saturating_sub(self.inner.limits.upload_expiry_secs * 1000);
        let stale = self.inner.meta.uploads_started_before(before, 100).await?;
        let count = stale.len();
        for (project, upload) in stale {
            self.drop_upload(&project, &upload).await?;
        }
        Ok(count)
    }
}

/// The parts a completion names, checked as S3 does: ascending numbers,
/// each received with that ETag, each but the last at least 5 MiB.
fn chosen_parts(named: &[CompletedPart], stored: &BTreeMap<u32, Part>) -> Result<Vec<Part>, Error> {
    if named.is_empty() {
        return Err(Error::invalid("a completion names at least one part"));
    }
    let mut chosen = Vec::with_capacity(named.len());
    let mut previous = 0;
    for (i, part) in named.iter().enumerate() {
        if part.number <= previous {
            return Err(Error::invalid(
                "parts must be listed in ascending order of number",
            ));
        }
        previous = part.number;
        let Some(found) = stored.get(&part.number) else {
            return Err(Error::invalid(format!(
                "part {} was not uploaded: nothing was stored",
                part.number
            )));
        };
        if found.etag != part.etag.trim_matches('"') {
            return Err(Error::invalid(format!(
                "part {}'s ETag does not match the uploaded part: nothing was stored",
                part.number
            )));
        }
        if i + 1 < named.len() && found.size < MIN_PART_SIZE {
            return Err(Error::invalid(format!(
                "part {} is {} bytes: every part but the last must be at least 5 MiB",
                part.number, found.size
            )));
        }
        chosen.push(found.clone());
    }
    Ok(chosen)
}

/// S3's multipart ETag: MD5 of the parts' MD5s, then `-<count>`.
fn multipart_etag(parts: &[Part]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        if let Ok(raw) = hex::decode(&part.etag) {
            md5.update(&raw);
        }
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}
