//! The platform's own data: projects and their members.
//!
//! The identity service ([`crate::auth`]) enforces who may do what; this
//! module holds the model and the [`ProjectStore`] trait its adapters
//! implement (the auth adapters implement it too: one database).

mod cascade;
mod model;
mod store;

pub use cascade::{DeletionFeed, ProjectData, follow_deletions, purge_everywhere};
pub use model::{Member, Project, ProjectView, Role};
pub use store::ProjectStore;
