//! Deleting a project removes its data in every service: each service
//! registers its [`ProjectData`] with the identity service, which calls
//! them when a project is deleted.

use async_trait::async_trait;

use crate::error::Error;
use crate::id::ProjectId;

/// A service's data of each project.
#[async_trait]
pub trait ProjectData: Send + Sync + 'static {
    /// The service's name, for logs.
    fn service(&self) -> &'static str;
    /// Removes everything the service holds for `project` (BunKMS puts
    /// its keys into their scheduled deletion instead). Safe to run again;
    /// answers how many items (keys, events, collections…) it removed.
    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error>;
}
