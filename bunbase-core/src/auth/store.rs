use async_trait::async_trait;

use super::model::{Account, ApiKey, Email, EndUser, Rotation, Session, SigningKey, SubjectKind};
use crate::error::Error;
use crate::id::ProjectId;

/// Where identity records live. Every adapter passes [`super::testing`]'s
/// conformance suite. Secrets are stored only as hashes (passwords with
/// Argon2id, refresh tokens and API keys with SHA-256).
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    /// Health: `Err(unavailable)` when the database does not answer.
    async fn check(&self) -> Result<(), Error>;

    /// `already_exists` if the email is taken.
    async fn create_account(&self, account: &Account) -> Result<(), Error>;
    async fn account(&self, id: &str) -> Result<Option<Account>, Error>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, Error>;
    /// The id of the earliest account (by creation time, then id): the
    /// instance's administrator. `None` before the first sign-up.
    async fn first_account(&self) -> Result<Option<String>, Error>;
    async fn set_account_password(&self, id: &str, password_hash: &str) -> Result<(), Error>;

    /// `already_exists` if the email is taken in that project.
    async fn create_user(&self, user: &EndUser) -> Result<(), Error>;
    async fn user(&self, project: &ProjectId, id: &str) -> Result<Option<EndUser>, Error>;
    async fn user_by_email(
        &self,
        project: &ProjectId,
        email: &Email,
    ) -> Result<Option<EndUser>, Error>;
    /// Users ordered by id, after `after` (a cursor), at most `limit`.
    async fn users(
        &self,
        project: &ProjectId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EndUser>, Error>;
    async fn set_user_password(
        &self,
        project: &ProjectId,
        id: &str,
        password_hash: &str,
    ) -> Result<(), Error>;
    /// Deletes the user and revokes its sessions.
    async fn delete_user(&self, project: &ProjectId, id: &str) -> Result<bool, Error>;

    /// Stores a session with its first refresh token (hash).
    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<(), Error>;
    async fn session(&self, id: &str) -> Result<Option<Session>, Error>;
    /// The session a refresh token (hash) belongs to, spent or not.
    async fn session_by_refresh(&self, hash: &str) -> Result<Option<Session>, Error>;
    /// Atomically spends `old_hash` and makes `new_hash` current in the same
    /// session; a spent token revokes the session (see [`Rotation`]).
    /// Expired or revoked sessions rotate to `Unknown`.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: u64,
    ) -> Result<Rotation, Error>;
    async fn revoke_session(&self, id: &str, now: u64) -> Result<bool, Error>;
    /// Revokes every active session of a subject; returns how many.
    async fn revoke_sessions(
        &self,
        kind: SubjectKind,
        subject: &str,
        now: u64,
    ) -> Result<u64, Error>;

    async fn create_key(&self, key: &ApiKey) -> Result<(), Error>;
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, Error>;
    async fn keys(&self, project: &ProjectId) -> Result<Vec<ApiKey>, Error>;
    async fn revoke_key(&self, project: &ProjectId, id: &str, now: u64) -> Result<bool, Error>;
    async fn touch_key(&self, id: &str, now: u64) -> Result<(), Error>;

    /// Signing keys, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, Error>;
    async fn add_signing_key(&self, key: &SigningKey) -> Result<(), Error>;
    /// Removes a retired signing key (its tokens have all expired).
    async fn remove_signing_key(&self, kid: &str) -> Result<bool, Error>;
}

/// Both identity store traits, as every adapter provides them.
pub trait IdentityStore: AuthStore + crate::platform::ProjectStore {}
impl<T: AuthStore + crate::platform::ProjectStore> IdentityStore for T {}
