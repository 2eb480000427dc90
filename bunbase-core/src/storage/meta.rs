//! The `MetaStore` trait: buckets, object descriptions, multipart uploads,
//! usage and S3 credentials of each project. The bytes themselves are in a
//! [`super::BlobStore`], by the id each description names.

use async_trait::async_trait;

use super::model::{Bucket, ObjectInfo, Part, PutCondition, Quota, S3Credential, Upload, Usage};
use crate::error::Error;
use crate::id::ProjectId;

#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// What it is, for logs (`sqlite`, `postgres`, `memory`).
    fn kind(&self) -> &'static str;

    /// Whether the store answers (health checks).
    async fn check(&self) -> Result<(), Error>;

    /// `already_exists` if the project has a bucket of that name.
    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), Error>;
    async fn bucket(&self, project: &ProjectId, name: &str) -> Result<Option<Bucket>, Error>;
    /// The project's buckets, by name.
    async fn buckets(&self, project: &ProjectId) -> Result<Vec<Bucket>, Error>;
    /// Replaces the bucket's settings (`not_found` if it is gone).
    async fn update_bucket(&self, bucket: &Bucket) -> Result<(), Error>;
    /// Deletes the bucket if it holds no object and no upload (`conflict`
    /// otherwise): whether it existed.
    async fn delete_bucket(&self, project: &ProjectId, name: &str) -> Result<bool, Error>;

    async fn object(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectInfo>, Error>;
    /// Records `object` (in an existing bucket: `not_found` otherwise),
    /// replacing the one at its key unless `condition` forbids it
    /// (`conflict`, nothing changed), and keeps the project's usage within
    /// `quota` (`quota_exceeded`, nothing changed). Returns the replaced
    /// object, whose blob the caller then deletes.
    async fn put_object(
        &self,
        project: &ProjectId,
        object: &ObjectInfo,
        condition: PutCondition,
        quota: Quota,
    ) -> Result<Option<ObjectInfo>, Error>;
    /// Removes the object's record: the removed one (its blob is the
    /// caller's to delete).
    async fn delete_object(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectInfo>, Error>;
    /// Objects of the bucket whose key starts with `prefix`, in byte order of
    /// their keys, after `after`, at most `limit`.
    async fn list_objects(
        &self,
        project: &ProjectId,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, Error>;
    /// The project's stored bytes and objects (complete objects only).
    async fn usage(&self, project: &ProjectId) -> Result<Usage, Error>;

    /// `already_exists` if the id is taken.
    async fn create_upload(&self, project: &ProjectId, upload: &Upload) -> Result<(), Error>;
    async fn upload(&self, project: &ProjectId, id: &str) -> Result<Option<Upload>, Error>;
    /// The uploads in progress in a bucket, oldest first.
    async fn uploads(&self, project: &ProjectId, bucket: &str) -> Result<Vec<Upload>, Error>;
    /// Records a received part (`not_found` if the upload is gone),
    /// replacing an earlier one of that number.
    async fn put_part(&self, project: &ProjectId, upload: &str, part: &Part) -> Result<(), Error>;
    /// The upload's parts, by number.
    async fn parts(&self, project: &ProjectId, upload: &str) -> Result<Vec<Part>, Error>;
    /// Forgets the upload and its parts: whether it existed.
    async fn delete_upload(&self, project: &ProjectId, id: &str) -> Result<bool, Error>;
    /// Uploads of every project started before `before` (abandoned ones
    /// are aborted), as (project, upload).
    async fn uploads_started_before(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, Upload)>, Error>;

    /// `already_exists` if the access key id is taken.
    async fn create_credential(&self, credential: &S3Credential) -> Result<(), Error>;
    async fn credential(&self, access_key_id: &str) -> Result<Option<S3Credential>, Error>;
    /// The project's credentials, oldest first.
    async fn credentials(&self, project: &ProjectId) -> Result<Vec<S3Credential>, Error>;
    /// Whether the project had it.
    async fn delete_credential(
        &self,
        project: &ProjectId,
        access_key_id: &str,
    ) -> Result<bool, Error>;
}
