//! `Keys`: what a service that encrypts its own data needs from BunKMS —
//! envelope data keys (Bundoc's field encryption). In one process it is
//! the KMS itself ([`LocalKeys`]); across containers, `bunbase-client`'s
//! `RemoteKeys` over HTTP with a platform token.

use async_trait::async_trait;

use super::crypto::{Algorithm, Material};
use super::service::Kms;
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::error::Error;
use crate::id::ProjectId;

/// A data key: use `plaintext`, then drop it; store `sealed` beside the
/// data it protects.
pub struct DataKey {
    pub plaintext: Material,
    pub sealed: Vec<u8>,
}

#[async_trait]
pub trait Keys: Send + Sync + 'static {
    /// Creates the project's encrypt key `key` if it does not exist yet.
    async fn ensure_key(&self, project: &ProjectId, key: &str) -> Result<(), Error>;
    /// A new data key sealed under `key`, bound to `context`.
    async fn generate_data_key(
        &self,
        project: &ProjectId,
        key: &str,
        context: &[u8],
    ) -> Result<DataKey, Error>;
    /// Whether the key service answers (health checks); in-process, always.
    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }
    /// The plaintext of a sealed data key (the key is named inside it).
    async fn decrypt_data_key(
        &self,
        project: &ProjectId,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Material, Error>;
}

/// The KMS in this process, called as one of the platform's services
/// (the audit names `subject`).
pub struct LocalKeys {
    kms: Kms,
    subject: String,
}

impl LocalKeys {
    pub fn new(kms: Kms, subject: impl Into<String>) -> LocalKeys {
        LocalKeys {
            kms,
            subject: subject.into(),
        }
    }

    fn caller(&self, project: &ProjectId) -> Principal {
        Principal {
            subject: self.subject.clone(),
            kind: PrincipalKind::Service,
            project: project.clone(),
            rights: Rights::ALL,
        }
    }
}

#[async_trait]
impl Keys for LocalKeys {
    async fn ensure_key(&self, project: &ProjectId, key: &str) -> Result<(), Error> {
        let who = self.caller(project);
        match self
            .kms
            .create_key(&who, project, key, Algorithm::Aes256Gcm, None)
            .await
        {
            Ok(_) | Err(Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn generate_data_key(
        &self,
        project: &ProjectId,
        key: &str,
        context: &[u8],
    ) -> Result<DataKey, Error> {
        let (plaintext, sealed) = self
            .kms
            .data_key(&self.caller(project), project, key, context, 32)
            .await?;
        Ok(DataKey {
            plaintext,
            sealed: sealed.ciphertext,
        })
    }

    async fn decrypt_data_key(
        &self,
        project: &ProjectId,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Material, Error> {
        let (plaintext, _, _) = self
            .kms
            .decrypt(&self.caller(project), project, sealed, context)
            .await?;
        Ok(plaintext)
    }
}
