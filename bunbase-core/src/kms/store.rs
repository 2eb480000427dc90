//! The `KmsStore` trait: keys, secrets and the audit chain of each
//! project. Adapters store what they are given; everything secret in it is
//! already wrapped by the master key.

use async_trait::async_trait;

use super::audit::{AuditEntry, AuditRecord};
use super::model::{AuditQuery, Key, SecretInfo, SecretVersion};
use crate::error::Error;
use crate::id::ProjectId;

#[async_trait]
pub trait KmsStore: Send + Sync + 'static {
    /// Whether the store answers (health checks).
    async fn check(&self) -> Result<(), Error>;
    /// The id of the master key the stored material is wrapped under.
    async fn master_key_id(&self) -> Result<Option<String>, Error>;
    async fn set_master_key_id(&self, id: &str) -> Result<(), Error>;

    /// `already_exists` if the project has a key of that name.
    async fn create_key(&self, key: &Key) -> Result<(), Error>;
    async fn key(&self, project: &ProjectId, name: &str) -> Result<Option<Key>, Error>;
    async fn keys(&self, project: &ProjectId) -> Result<Vec<Key>, Error>;
    /// Replaces the key if its stored revision is `key.revision - 1`
    /// (`conflict` otherwise: someone changed it meanwhile).
    async fn update_key(&self, key: &Key) -> Result<(), Error>;
    /// Deletes the key if its revision is still `revision` (a change
    /// meanwhile, such as a cancelled deletion, keeps it): whether it did.
    async fn delete_key(
        &self,
        project: &ProjectId,
        name: &str,
        revision: u64,
    ) -> Result<bool, Error>;
    /// Keys of every project with a deletion or rotation due by `now`.
    async fn keys_due(&self, now: u64) -> Result<Vec<Key>, Error>;

    /// Adds `version`, which must follow the latest (1 for a new secret):
    /// `conflict` if another version got there first.
    async fn put_secret(
        &self,
        project: &ProjectId,
        name: &str,
        version: u32,
        wrapped: Vec<u8>,
        at: u64,
    ) -> Result<(), Error>;
    /// The latest version, or the one asked for.
    async fn secret(
        &self,
        project: &ProjectId,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<SecretVersion>, Error>;
    async fn secrets(&self, project: &ProjectId) -> Result<Vec<SecretInfo>, Error>;
    async fn delete_secret(&self, project: &ProjectId, name: &str) -> Result<bool, Error>;

    /// Every project's keys (for re-wrapping under a new master key).
    async fn all_keys(&self) -> Result<Vec<Key>, Error>;
    /// Every project's secret versions, as (project, name, version).
    async fn all_secrets(&self) -> Result<Vec<(ProjectId, String, SecretVersion)>, Error>;
    /// Replaces a key version's wrapped material (re-wrapping only).
    async fn rewrap_key_version(
        &self,
        project: &ProjectId,
        name: &str,
        version: u32,
        wrapped: Vec<u8>,
    ) -> Result<(), Error>;
    /// Replaces a secret version's wrapped value (re-wrapping only).
    async fn rewrap_secret_version(
        &self,
        project: &ProjectId,
        name: &str,
        version: u32,
        wrapped: Vec<u8>,
    ) -> Result<(), Error>;

    /// Chains `entry` after the project's last record, atomically.
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, Error>;
    async fn audit(
        &self,
        project: &ProjectId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, Error>;
}
