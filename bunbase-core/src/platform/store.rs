use async_trait::async_trait;

use super::model::{Member, Project, Role};
use crate::error::Error;
use crate::id::ProjectId;

/// Where projects and memberships live. Every adapter passes
/// [`crate::auth::testing`]'s conformance suite.
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// Creates the project with `owner` as its first member (atomically).
    async fn create_project(&self, project: &Project, owner: &Member) -> Result<(), Error>;
    async fn project(&self, id: &ProjectId) -> Result<Option<Project>, Error>;
    /// Projects the account is a member of, with its role, by creation time.
    async fn projects_of(&self, account_id: &str) -> Result<Vec<(Project, Role)>, Error>;
    async fn rename_project(&self, id: &ProjectId, name: &str) -> Result<bool, Error>;
    /// Deletes the project and everything of it in this store: members,
    /// API keys, end users and their sessions; and records that it was
    /// deleted (at `deleted_at`, ms), for services in other processes.
    async fn delete_project(&self, id: &ProjectId, deleted_at: u64) -> Result<bool, Error>;
    /// Projects deleted at or after `since` (ms), oldest first, at most
    /// `limit`: `(id, deleted_at)`.
    async fn deleted_projects(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, u64)>, Error>;

    /// Adds or changes a membership.
    async fn put_member(&self, member: &Member) -> Result<(), Error>;
    async fn member(&self, project: &ProjectId, account_id: &str) -> Result<Option<Member>, Error>;
    async fn members(&self, project: &ProjectId) -> Result<Vec<Member>, Error>;
    async fn remove_member(&self, project: &ProjectId, account_id: &str) -> Result<bool, Error>;
}
