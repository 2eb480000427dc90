//! Objects: put, get (ranges, conditional), head, delete, copy and move,
//! and listings with folders.

use std::collections::BTreeMap;

use serde_json::Value;

use super::access::{self, Actor, Gate, RuleOp};
use super::blob::{ByteRange, ByteStream};
use super::model::{
    Bucket, ListPage, ListQuery, ObjectInfo, ObjectPath, PutCondition, validate_content_type,
    validate_metadata,
};
use super::range::RangeSpec;
use super::service::Storage;
use super::tally::{counted, tallied};
use crate::error::Error;
use crate::id::{ProjectId, now_millis, random_hex};

/// What a put says about the object besides its bytes.
#[derive(Debug, Clone)]
pub struct PutObject {
    pub content_type: Option<String>,
    /// The body's length (`Content-Length`), when known.
    pub length: Option<u64>,
    pub metadata: BTreeMap<String, String>,
    pub condition: PutCondition,
}

/// What a get asks for.
#[derive(Debug, Clone, Default)]
pub struct GetObject {
    pub range: Option<RangeSpec>,
    /// `If-None-Match`: ETags (quoted or not), or `*`.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`, in seconds since the epoch.
    pub if_modified_since: Option<u64>,
}

/// A get's answer.
pub enum Fetched {
    /// The client's copy is current (304).
    NotModified(ObjectInfo),
    /// The bytes (of `range`, when one was asked and resolved).
    Body {
        info: ObjectInfo,
        range: Option<ByteRange>,
        body: ByteStream,
    },
}

/// What a refused write left behind.
const NOTHING_STORED: &str = "nothing was stored";

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

impl Storage {
    /// The bucket and the actor's gate for `op` on it.
    async fn gated(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        bucket: &str,
        op: RuleOp,
    ) -> Result<(Bucket, Gate), Error> {
        let found = self.existing_bucket(project, bucket).await;
        // Callers without a right in the project learn nothing of its
        // buckets: the credential is checked before "not found".
        let bucket = match (found, actor) {
            (Ok(b), _) => b,
            (Err(e), Actor::Principal(who)) => {
                if who.project != *project {
                    who.authorize(project, RuleOp::Read.access())?;
                }
                return Err(e);
            }
            // Without a credential a missing bucket answers as a private
            // one: bucket names are not for strangers to probe.
            (Err(_), Actor::Anonymous) => {
                return Err(Error::Unauthenticated(
                    "missing credential: send Authorization: Bearer <token>".into(),
                ));
            }
            (Err(e), Actor::Signed(_)) => return Err(e),
        };
        let gate = access::gate(actor, project, &bucket, op)?;
        Ok((bucket, gate))
    }

    pub async fn put_object(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        at: &ObjectPath,
        put: PutObject,
        body: ByteStream,
    ) -> Result<ObjectInfo, Error> {
        self.recorded("put_object", async {
            let (bucket, gate) = self
                .gated(actor, project, &at.bucket, RuleOp::Write)
                .await?;
            let content_type = put
                .content_type
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
            let max =
                self.checked_write(actor, &bucket, &content_type, &put.metadata, put.length)?;
            let existing = self.inner.meta.object(project, &at.bucket, &at.key).await?;
            let mut request = access::rule_object(&at.bucket, &at.key, None);
            if let Value::Object(m) = &mut request {
                m.insert("size".into(), serde_json::json!(put.length));
                m.insert("content_type".into(), serde_json::json!(content_type));
                m.insert("metadata".into(), serde_json::json!(put.metadata));
            }
            let resource = resource_of(&at.bucket, &at.key, existing.as_ref());
            access::check(&gate, &bucket, RuleOp::Write, &resource, &request)?;
            // Only once the write is allowed: the answer tells whether a
            // key exists.
            if existing.is_some() && put.condition == PutCondition::IfAbsent {
                return Err(precondition(&at.key));
            }
            if let Some(length) = put.length {
                self.check_quota(project, length, existing.as_ref(), NOTHING_STORED)
                    .await?;
            }

            let blob = random_hex(16);
            let (stream, tally) = tallied(body, put.length, max);
            if let Err(e) = self.inner.blobs.put(&blob, stream).await {
                self.discard_blob(&blob).await;
                return Err(e);
            }
            let (size, etag) = tally.finish().await?;
            self.inner.metrics.bytes_in.inc_by(size);
            let info = ObjectInfo {
                bucket: at.bucket.clone(),
                key: at.key.clone(),
                size,
                etag,
                content_type,
                metadata: put.metadata,
                owner: gate.owner(),
                last_modified: now_millis(),
                blob,
            };
            self.commit(project, info, put.condition).await
        })
        .await
    }

    /// Checks a write's content type, metadata and declared size against
    /// the bucket and a signed URL's bounds; returns the size limit.
    fn checked_write(
        &self,
        actor: Actor<'_>,
        bucket: &Bucket,
        content_type: &str,
        metadata: &BTreeMap<String, String>,
        length: Option<u64>,
    ) -> Result<u64, Error> {
        validate_content_type(content_type)?;
        validate_metadata(metadata)?;
        if !bucket.settings.accepts(content_type) {
            return Err(Error::invalid(format!(
                "bucket {} does not take {content_type}: it takes {}",
                bucket.name,
                bucket.settings.allowed_content_types.join(", ")
            )));
        }
        let mut max = self.max_object_size(bucket);
        if let Actor::Signed(grant) = actor {
            if let Some(bound) = &grant.content_type
                && !bound.eq_ignore_ascii_case(content_type)
            {
                return Err(Error::PermissionDenied(format!(
                    "the signed URL is for content type {bound}, not {content_type}"
                )));
            }
            if let Some(bound) = grant.max_size {
                max = max.min(bound);
            }
        }
        if let Some(length) = length
            && length > max
        {
            return Err(Error::PayloadTooLarge(format!(
                "objects here are at most {max} bytes and this one is {length}: nothing was stored"
            )));
        }
        Ok(max)
    }

    /// The largest object `bucket` takes: its own limit within the
    /// instance's.
    pub(crate) fn max_object_size(&self, bucket: &Bucket) -> u64 {
        bucket
            .settings
            .max_object_size
            .unwrap_or(u64::MAX)
            .min(self.inner.limits.max_object_size)
    }

    /// Refuses early (before the bytes arrive) a write the quota cannot
    /// take, saying what became of it (`outcome`); the metadata store
    /// checks again atomically.
    pub(crate) async fn check_quota(
        &self,
        project: &ProjectId,
        length: u64,
        existing: Option<&ObjectInfo>,
        outcome: &str,
    ) -> Result<(), Error> {
        let usage = self.inner.meta.usage(project).await?;
        let quota = self.inner.limits.quota;
        let freed = existing.map_or(0, |o| o.size);
        if usage.bytes.saturating_sub(freed) + length > quota.max_bytes {
            return Err(Error::QuotaExceeded(format!(
                "the project's storage quota is {} bytes and {} are used: {outcome}",
                quota.max_bytes, usage.bytes
            )));
        }
        if existing.is_none() && usage.objects >= quota.max_objects {
            return Err(Error::QuotaExceeded(format!(
                "the project may store {} objects and holds {}: {outcome}",
                quota.max_objects, usage.objects
            )));
        }
        Ok(())
    }

    /// Records a stored blob as the object, or deletes the blob.
    pub(crate) async fn commit(
        &self,
        project: &ProjectId,
        info: ObjectInfo,
        condition: PutCondition,
    ) -> Result<ObjectInfo, Error> {
        let put = self
            .inner
            .meta
            .put_object(project, &info, condition, self.inner.limits.quota)
            .await;
        match put {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    self.discard_blob(&old.blob).await;
                }
                self.publish_usage(project).await;
                Ok(info)
            }
            Err(e) => {
                self.discard_blob(&info.blob).await;
                Err(match e {
                    Error::Conflict(_) if condition == PutCondition::IfAbsent => {
                        precondition(&info.key)
                    }
                    other => other,
                })
            }
        }
    }

    /// The object's description, if the actor may read it (a hidden object
    /// answers as a missing one).
    async fn readable(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        at: &ObjectPath,
    ) -> Result<ObjectInfo, Error> {
        let (bucket, gate) = self.gated(actor, project, &at.bucket, RuleOp::Read).await?;
        let missing = || Error::NotFound(format!("object {} not found", at.key));
        if let Actor::Signed(grant) = actor
            && grant.key != at.key
        {
            return Err(Error::PermissionDenied(
                "the signed URL is for another key".into(),
            ));
        }
        let info = self
            .inner
            .meta
            .object(project, &at.bucket, &at.key)
            .await?
            .ok_or_else(missing)?;
        let resource = resource_of(&at.bucket, &at.key, Some(&info));
        if !access::allowed(&gate, &bucket, RuleOp::Read, &resource, &Value::Null) {
            return Err(missing());
        }
        Ok(info)
    }

    pub async fn head_object(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        at: &ObjectPath,
    ) -> Result<ObjectInfo, Error> {
        self.recorded("head_object", self.readable(actor, project, at))
            .await
    }

    pub async fn get_object(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        at: &ObjectPath,
        get: GetObject,
    ) -> Result<Fetched, Error> {
        self.recorded("get_object", async {
            let info = self.readable(actor, project, at).await?;
            if not_modified(&info, &get) {
                return Ok(Fetched::NotModified(info));
            }
            let range = get.range.map(|r| r.resolve(info.size)).transpose()?;
            let body = self.inner.blobs.get(&info.blob, range).await?;
            let body = counted(body, self.inner.metrics.bytes_out.clone());
            Ok(Fetched::Body { info, range, body })
        })
        .await
    }

    pub async fn delete_object(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        at: &ObjectPath,
    ) -> Result<(), Error> {
        self.recorded("delete_object", async {
            let (bucket, gate) = self
                .gated(actor, project, &at.bucket, RuleOp::Delete)
                .await?;
            let Some(info) = self.inner.meta.object(project, &at.bucket, &at.key).await? else {
                return Err(Error::NotFound(format!("object {} not found", at.key)));
            };
            let resource = resource_of(&at.bucket, &at.key, Some(&info));
            if gate.is_ruled()
                && !access::allowed(&gate, &bucket, RuleOp::Read, &resource, &Value::Null)
            {
                return Err(Error::NotFound(format!("object {} not found", at.key)));
            }
            access::check(&gate, &bucket, RuleOp::Delete, &resource, &Value::Null)?;
            if let Some(removed) = self
                .inner
                .meta
                .delete_object(project, &at.bucket, &at.key)
                .await?
            {
                self.discard_blob(&removed.blob).await;
            }
            self.publish_usage(project).await;
            Ok(())
        })
        .await
    }

    /// Copies (or, with `remove_source`, moves) an object inside the
    /// project: read the source, write the target, as the actor may.
    pub async fn copy_object(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        from: &ObjectPath,
        to: &ObjectPath,
        remove_source: bool,
    ) -> Result<ObjectInfo, Error> {
        let op = if remove_source {
            "move_object"
        } else {
            "copy_object"
        };
        self.recorded(op, async {
            if matches!(actor, Actor::Signed(_) | Actor::Anonymous) {
                return Err(Error::PermissionDenied(
                    "copies and moves need a credential of the project".into(),
                ));
            }
            let source = self.readable(actor, project, from).await?;
            let (bucket, gate) = self
                .gated(actor, project, &to.bucket, RuleOp::Write)
                .await?;
            self.checked_write(
                actor,
                &bucket,
                &source.content_type,
                &source.metadata,
                Some(source.size),
            )?;
            let existing = self.inner.meta.object(project, &to.bucket, &to.key).await?;
            let request = resource_of(&to.bucket, &to.key, Some(&source));
            let resource = resource_of(&to.bucket, &to.key, existing.as_ref());
            access::check(&gate, &bucket, RuleOp::Write, &resource, &request)?;
            if remove_source {
                let (source_bucket, source_gate) = self
                    .gated(actor, project, &from.bucket, RuleOp::Delete)
                    .await?;
                let resource = resource_of(&from.bucket, &from.key, Some(&source));
                access::check(
                    &source_gate,
                    &source_bucket,
                    RuleOp::Delete,
                    &resource,
                    &Value::Null,
                )?;
            }
            if from == to {
                return Ok(source);
            }
            self.check_quota(project, source.size, existing.as_ref(), NOTHING_STORED)
                .await?;
            let blob = random_hex(16);
            self.inner.blobs.copy(&source.blob, &blob).await?;
            let info = ObjectInfo {
                bucket: to.bucket.clone(),
                key: to.key.clone(),
                owner: gate.owner(),
                last_modified: now_millis(),
                blob,
                ..source.clone()
            };
            let info = self.commit(project, info, PutCondition::Any).await?;
            if remove_source {
                let still = self
                    .inner
                    .meta
                    .object(project, &from.bucket, &from.key)
                    .await?;
                // Only the object that was copied: a newer one stays.
                if still.is_some_and(|s| s.blob == source.blob)
                    && let Some(removed) = self
                        .inner
                        .meta
                        .delete_object(project, &from.bucket, &from.key)
                        .await?
                {
                    self.discard_blob(&removed.blob).await;
                }
                self.publish_usage(project).await;
            }
            Ok(info)
        })
        .await
    }

    /// A page of the bucket's objects under a prefix, with folders when a
    /// delimiter is given. End users and publishable keys see only what
    /// the read rule shows them, folders included.
    pub async fn list_objects(
        &self,
        actor: Actor<'_>,
        project: &ProjectId,
        bucket_name: &str,
        query: &ListQuery,
    ) -> Result<ListPage, Error> {
        self.recorded("list_objects", async {
            if matches!(actor, Actor::Signed(_)) {
                return Err(Error::PermissionDenied("a signed URL does not list".into()));
            }
            let (bucket, gate) = self
                .gated(actor, project, bucket_name, RuleOp::Read)
                .await?;
            if matches!(gate, Gate::Public) {
                // Public buckets serve their objects, not their listings.
                return Err(Error::Unauthenticated(
                    "listing a bucket needs a credential of its project".into(),
                ));
            }
            if query.prefix.len() > super::model::MAX_KEY_BYTES {
                return Err(Error::invalid("the prefix is longer than any key"));
            }
            let limit = match query.limit {
                0 => self.inner.limits.max_list,
                n => n.min(self.inner.limits.max_list),
            };
            let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
            let mut page = ListPage::default();
            let mut after = query.cursor.clone();
            // A folder cursor: skip what lies under it.
            let mut skip = after
                .clone()
                .filter(|c| delimiter.is_some_and(|d| c.ends_with(d)));
            // Rules may hide most rows: scan a bounded number per page.
            let mut budget = limit.saturating_mul(20).max(1000);
            let batch = limit.clamp(100, 1000);
            'scan: loop {
                let rows = self
                    .inner
                    .meta
                    .list_objects(project, bucket_name, &query.prefix, after.as_deref(), batch)
                    .await?;
                let exhausted = rows.len() < batch;
                for info in rows {
                    after = Some(info.key.clone());
                    budget = budget.saturating_sub(1);
                    if skip.as_deref().is_some_and(|s| info.key.starts_with(s)) {
                        if budget == 0 {
                            page.next = after.clone();
                            break 'scan;
                        }
                        continue;
                    }
                    skip = None;
                    let resource = resource_of(bucket_name, &info.key, Some(&info));
                    let visible =
                        access::allowed(&gate, &bucket, RuleOp::Read, &resource, &Value::Null);
                    if visible {
                        let rest = &info.key[query.prefix.len()..];
                        match delimiter.and_then(|d| rest.find(d).map(|at| at + d.len())) {
                            Some(end) => {
                                let folder = info.key[..query.prefix.len() + end].to_string();
                                after = Some(folder.clone());
                                skip = Some(folder.clone());
                                page.prefixes.push(folder);
                            }
                            None => page.objects.push(info),
                        }
                        if page.objects.len() + page.prefixes.len() >= limit {
                            page.next = after.clone();
                            break 'scan;
                        }
                    }
                    if budget == 0 {
                        page.next = after.clone();
                        break 'scan;
                    }
                }
                if exhausted {
                    break;
                }
            }
            // A full page whose cursor has nothing after it is the last:
            // say so now rather than with an empty page.
            if let Some(next) = &page.next {
                let skip = delimiter.is_some_and(|d| next.ends_with(d));
                let after = if skip {
                    // Past everything under the folder.
                    format!("{next}\u{10FFFF}")
                } else {
                    next.clone()
                };
                let more = self
                    .inner
                    .meta
                    .list_objects(project, bucket_name, &query.prefix, Some(&after), 1)
                    .await?;
                if more.is_empty() {
                    page.next = None;
                }
            }
            Ok(page)
        })
        .await
    }
}

fn resource_of(bucket: &str, key: &str, info: Option<&ObjectInfo>) -> Value {
    match info {
        Some(info) => access::rule_object(bucket, key, Some(info)),
        None => Value::Null,
    }
}

fn precondition(key: &str) -> Error {
    Error::PreconditionFailed(format!(
        "an object exists at {key} and If-None-Match: * was sent: nothing was stored"
    ))
}

/// `If-None-Match` first (it overrides `If-Modified-Since`, RFC 9110).
fn not_modified(info: &ObjectInfo, get: &GetObject) -> bool {
    if let Some(tags) = &get.if_none_match {
        return tags.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
            tag == "*" || tag == info.etag
        });
    }
    get.if_modified_since
        .is_some_and(|since| info.last_modified / 1000 <= since)
}
