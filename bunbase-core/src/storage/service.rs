//! The storage service: what shells and embedders call. Buckets, usage,
//! signed URLs and S3 credentials here; objects in `objects.rs`, multipart
//! uploads in `uploads.rs`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::access::{self, Actor, RuleOp};
use super::blob::BlobStore;
use super::meta::MetaStore;
use super::metrics::StorageMetrics;
use super::model::{
    Bucket, BucketSettings, Quota, S3Credential, Usage, validate_bucket_name, validate_key,
};
use super::secret::StorageSecret;
use super::signed::{self, MAX_SIGNED_SECS, SignedGrant, SignedMethod, SignedParams};
use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::id::{ProjectId, now_millis, random_hex};

/// The instance's limits.
#[derive(Debug, Clone, Copy)]
pub struct StorageLimits {
    /// Largest object (a bucket may set less).
    pub max_object_size: u64,
    /// Each project's quota.
    pub quota: Quota,
    /// Most objects and folders in one listing page.
    pub max_list: usize,
    /// Multipart uploads idle this long are aborted.
    pub upload_expiry_secs: u64,
    /// Largest part of a multipart upload (the S3 store holds one part in
    /// memory while it signs it).
    pub max_part_size: u64,
}

impl Default for StorageLimits {
    fn default() -> StorageLimits {
        StorageLimits {
            max_object_size: 50 << 30,
            quota: Quota {
                max_bytes: 100 << 30,
                max_objects: 1_000_000,
            },
            max_list: 1000,
            upload_expiry_secs: 7 * 24 * 3600,
            max_part_size: 256 << 20,
        }
    }
}

/// Storage: buckets of objects per project.
#[derive(Clone)]
pub struct Storage {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) limits: StorageLimits,
    pub(crate) metrics: StorageMetrics,
    pub(crate) secret: StorageSecret,
}

/// A bucket's settings change: fields left out stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketPatch {
    pub public: Option<bool>,
    pub allowed_content_types: Option<Vec<String>>,
    /// `null` clears it.
    #[serde(default, with = "double_option")]
    pub max_object_size: Option<Option<u64>>,
    pub rules: Option<super::model::BucketRules>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
}

/// A signed URL, made by [`Storage::sign`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedUrl {
    /// The object's path under the gateway (`/storage/v1/projects/…`) with
    /// the signature's query string: join it to the server's base URL.
    pub url: String,
    pub method: SignedMethod,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

/// What to sign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub key: String,
    #[serde(default = "get")]
    pub method: SignedMethod,
    /// Validity in seconds, at most 7 days.
    pub expires_in: u64,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub max_size: Option<u64>,
}

fn get() -> SignedMethod {
    SignedMethod::Get
}

/// A new S3 credential: the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewS3Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub created_at: u64,
}

/// An S3 credential as listed (no secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3CredentialInfo {
    pub access_key_id: String,
    pub created_by: String,
    pub created_at: u64,
}

pub(crate) fn now_secs() -> u64 {
    now_millis() / 1000
}

impl Storage {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        limits: StorageLimits,
        metrics: StorageMetrics,
        secret: StorageSecret,
    ) -> Storage {
        Storage {
            inner: Arc::new(Inner {
                meta,
                blobs,
                limits,
                metrics,
                secret,
            }),
        }
    }

    pub fn limits(&self) -> &StorageLimits {
        &self.inner.limits
    }

    /// Both stores answer.
    pub async fn check(&self) -> Result<(), Error> {
        self.inner.meta.check().await?;
        self.inner.blobs.check().await
    }

    /// `meta + blobs`, for logs and the banner.
    pub fn describe(&self) -> String {
        format!(
            "metadata in {}, objects in {}",
            self.inner.meta.kind(),
            self.inner.blobs.describe()
        )
    }

    pub(crate) async fn recorded<T>(
        &self,
        op: &str,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let result = work.await;
        self.inner.metrics.record(op, &result);
        result
    }

    /// The bucket, or `not_found`.
    pub(crate) async fn existing_bucket(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Bucket, Error> {
        validate_bucket_name(name)?;
        self.inner
            .meta
            .bucket(project, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("bucket {name} not found")))
    }

    fn check_settings(&self, settings: &BucketSettings) -> Result<(), Error> {
        for content_type in &settings.allowed_content_types {
            let essence = content_type.strip_suffix("/*").map(|k| format!("{k}/x"));
            super::model::validate_content_type(essence.as_deref().unwrap_or(content_type))?;
        }
        if let Some(max) = settings.max_object_size
            && (max == 0 || max > self.inner.limits.max_object_size)
        {
            return Err(Error::invalid(format!(
                "max_object_size must be 1 to {} bytes (the instance's limit)",
                self.inner.limits.max_object_size
            )));
        }
        Ok(())
    }

    pub async fn create_bucket(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        settings: BucketSettings,
    ) -> Result<Bucket, Error> {
        self.recorded("create_bucket", async {
            who.authorize(project, Access::Admin)?;
            validate_bucket_name(name)?;
            self.check_settings(&settings)?;
            let now = now_millis();
            let bucket = Bucket {
                project: project.clone(),
                name: name.to_string(),
                settings,
                created_at: now,
                updated_at: now,
            };
            access::validate_rules(&bucket)?;
            self.inner
                .meta
                .create_bucket(&bucket)
                .await
                .map_err(|e| match e {
                    Error::AlreadyExists(_) => {
                        Error::AlreadyExists(format!("bucket {name} already exists"))
                    }
                    other => other,
                })?;
            Ok(bucket)
        })
        .await
    }

    /// The project's buckets (any right in the project may list them).
    pub async fn buckets(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<Bucket>, Error> {
        self.recorded("list_buckets", async {
            who.authorize(project, Access::Read)?;
            self.inner.meta.buckets(project).await
        })
        .await
    }

    pub async fn bucket(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<Bucket, Error> {
        self.recorded("get_bucket", async {
            who.authorize(project, Access::Read)?;
            self.existing_bucket(project, name).await
        })
        .await
    }

    pub async fn update_bucket(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        patch: BucketPatch,
    ) -> Result<Bucket, Error> {
        self.recorded("update_bucket", async {
            who.authorize(project, Access::Admin)?;
            let mut bucket = self.existing_bucket(project, name).await?;
            let s = &mut bucket.settings;
            if let Some(public) = patch.public {
                s.public = public;
            }
            if let Some(types) = patch.allowed_content_types {
                s.allowed_content_types = types;
            }
            if let Some(max) = patch.max_object_size {
                s.max_object_size = max;
            }
            if let Some(rules) = patch.rules {
                s.rules = rules;
            }
            self.check_settings(&bucket.settings)?;
            access::validate_rules(&bucket)?;
            bucket.updated_at = now_millis();
            self.inner.meta.update_bucket(&bucket).await?;
            Ok(bucket)
        })
        .await
    }

    /// Deletes an empty bucket; with `force`, its objects and uploads
    /// first.
    pub async fn delete_bucket(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        force: bool,
    ) -> Result<(), Error> {
        self.recorded("delete_bucket", async {
            who.authorize(project, Access::Admin)?;
            self.existing_bucket(project, name).await?;
            if force {
                self.empty_bucket(project, name).await?;
            }
            self.inner.meta.delete_bucket(project, name).await?;
            Ok(())
        })
        .await
    }

    /// Removes every object and upload of a bucket.
    pub(crate) async fn empty_bucket(&self, project: &ProjectId, name: &str) -> Result<(), Error> {
        for upload in self.inner.meta.uploads(project, name).await? {
            self.drop_upload(project, &upload).await?;
        }
        loop {
            let batch = self
                .inner
                .meta
                .list_objects(project, name, "", None, 500)
                .await?;
            if batch.is_empty() {
                break;
            }
            for object in batch {
                if let Some(removed) = self
                    .inner
                    .meta
                    .delete_object(project, name, &object.key)
                    .await?
                {
                    self.discard_blob(&removed.blob).await;
                }
            }
        }
        self.publish_usage(project).await;
        Ok(())
    }

    /// Deletes a blob nothing refers to any more; a failure leaves an
    /// orphan (logged), never a broken object.
    pub(crate) async fn discard_blob(&self, blob: &str) {
        if let Err(e) = self.inner.blobs.delete(blob).await {
            tracing::warn!(blob, error = %e, "storage: could not delete an unreferenced blob");
        }
    }

    /// Refreshes the project's usage gauges.
    pub(crate) async fn publish_usage(&self, project: &ProjectId) {
        if let Ok(usage) = self.inner.meta.usage(project).await {
            let m = &self.inner.metrics;
            m.bytes
                .with_label_values(&[project.as_str()])
                .set(usage.bytes as i64);
            m.objects
                .with_label_values(&[project.as_str()])
                .set(usage.objects as i64);
        }
    }

    /// The project's stored bytes and objects, and its quota.
    pub async fn usage(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<(Usage, Quota), Error> {
        who.authorize(project, Access::Read)?;
        Ok((
            self.inner.meta.usage(project).await?,
            self.inner.limits.quota,
        ))
    }

    /// A URL that lets its holder GET or PUT one key for a while. The
    /// signer must be allowed that itself (rules included).
    pub async fn sign(
        &self,
        who: &Principal,
        project: &ProjectId,
        bucket_name: &str,
        req: SignRequest,
    ) -> Result<SignedUrl, Error> {
        self.recorded("sign", async {
            // Another project's credential learns nothing of the buckets.
            if who.project != *project {
                who.authorize(project, Access::Read)?;
            }
            validate_key(&req.key)?;
            if req.expires_in == 0 || req.expires_in > MAX_SIGNED_SECS {
                return Err(Error::invalid(format!(
                    "expires_in must be 1 to {MAX_SIGNED_SECS} seconds (7 days)"
                )));
            }
            if let Some(ct) = &req.content_type {
                super::model::validate_content_type(ct)?;
            }
            let bucket = self.existing_bucket(project, bucket_name).await?;
            let op = match req.method {
                SignedMethod::Get => RuleOp::Read,
                SignedMethod::Put => RuleOp::Write,
            };
            let gate = access::gate(Actor::Principal(who), project, &bucket, op)?;
            if gate.is_ruled() {
                let stored = self
                    .inner
                    .meta
                    .object(project, bucket_name, &req.key)
                    .await?;
                let resource = stored.as_ref().map_or(serde_json::Value::Null, |o| {
                    access::rule_object(bucket_name, &req.key, Some(o))
                });
                let request = match op {
                    RuleOp::Read => serde_json::Value::Null,
                    _ => {
                        let mut r = access::rule_object(bucket_name, &req.key, None);
                        if let (Some(ct), serde_json::Value::Object(m)) =
                            (&req.content_type, &mut r)
                        {
                            m.insert("content_type".into(), serde_json::json!(ct));
                        }
                        r
                    }
                };
                access::check(&gate, &bucket, op, &resource, &request)?;
            }
            let grant = SignedGrant {
                project: project.clone(),
                bucket: bucket_name.to_string(),
                key: req.key.clone(),
                method: req.method,
                content_type: req.content_type,
                max_size: req.max_size,
            };
            let expires_at = now_secs() + req.expires_in;
            let params = signed::sign(&self.inner.secret, &grant, expires_at);
            let query = serde_urlencoded::to_string(&params)
                .map_err(|e| Error::internal(format!("signed URL query: {e}")))?;
            Ok(SignedUrl {
                url: format!(
                    "/storage/v1/projects/{project}/buckets/{bucket_name}/objects/{}?{query}",
                    encode_key(&req.key)
                ),
                method: req.method,
                expires_at,
            })
        })
        .await
    }

    /// The grant of a signed URL for this request, or `permission_denied`.
    pub fn verify_signed(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
        method: SignedMethod,
        params: &SignedParams,
    ) -> Result<SignedGrant, Error> {
        let result = signed::verify(
            &self.inner.secret,
            project,
            bucket,
            key,
            method,
            params,
            now_secs(),
        );
        self.inner.metrics.record("verify_signed", &result);
        result
    }

    /// Makes an S3 credential for the project (admins only).
    pub async fn create_s3_credential(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<NewS3Credential, Error> {
        who.authorize(project, Access::Admin)?;
        let access_key_id = format!("BB{}", random_hex(9).to_ascii_uppercase());
        let secret = random_hex(20);
        let sealed_secret = self
            .inner
            .secret
            .seal(secret.as_bytes(), access_key_id.as_bytes())?;
        let created_at = now_millis();
        self.inner
            .meta
            .create_credential(&S3Credential {
                access_key_id: access_key_id.clone(),
                project: project.clone(),
                sealed_secret,
                created_by: who.subject.clone(),
                created_at,
            })
            .await?;
        Ok(NewS3Credential {
            access_key_id,
            secret_access_key: secret,
            created_at,
        })
    }

    pub async fn s3_credentials(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<S3CredentialInfo>, Error> {
        who.authorize(project, Access::Admin)?;
        Ok(self
            .inner
            .meta
            .credentials(project)
            .await?
            .into_iter()
            .map(|c| S3CredentialInfo {
                access_key_id: c.access_key_id,
                created_by: c.created_by,
                created_at: c.created_at,
            })
            .collect())
    }

    pub async fn revoke_s3_credential(
        &self,
        who: &Principal,
        project: &ProjectId,
        access_key_id: &str,
    ) -> Result<(), Error> {
        who.authorize(project, Access::Admin)?;
        if self
            .inner
            .meta
            .delete_credential(project, access_key_id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "S3 credential {access_key_id} not found"
            )))
        }
    }

    /// For the S3 API: the project and secret of an access key id, or
    /// `None` for an unknown (or revoked) one.
    pub async fn s3_secret(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(ProjectId, zeroize::Zeroizing<String>)>, Error> {
        let Some(credential) = self.inner.meta.credential(access_key_id).await? else {
            return Ok(None);
        };
        let plain = self
            .inner
            .secret
            .open(&credential.sealed_secret, access_key_id.as_bytes())?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| Error::internal("a stored S3 secret is not text"))?;
        Ok(Some((credential.project, zeroize::Zeroizing::new(text))))
    }

    /// Removes everything of a deleted project: objects and their blobs,
    /// uploads, buckets, S3 credentials.
    pub async fn purge(&self, project: &ProjectId) -> Result<u64, Error> {
        let mut removed = 0;
        for bucket in self.inner.meta.buckets(project).await? {
            self.empty_bucket(project, &bucket.name).await?;
            self.inner.meta.delete_bucket(project, &bucket.name).await?;
            removed += 1;
        }
        for credential in self.inner.meta.credentials(project).await? {
            self.inner
                .meta
                .delete_credential(project, &credential.access_key_id)
                .await?;
        }
        let m = &self.inner.metrics;
        let _ = m.bytes.remove_label_values(&[project.as_str()]);
        let _ = m.objects.remove_label_values(&[project.as_str()]);
        Ok(removed)
    }
}

#[async_trait::async_trait]
impl crate::platform::ProjectData for Storage {
    fn service(&self) -> &'static str {
        "storage"
    }

    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
        self.purge(project).await
    }
}

/// A key in a URL path: each segment percent-encoded, slashes kept.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
