//! Bundoc's service: what shells and embedders call. It authorizes (data
//! rights bypass rules; end users and publishable keys are checked against
//! the collection's rules), validates, keeps the system fields and index
//! entries, encrypts fields, plans queries, commits through one committer
//! per project (group commit, so change events go out in commit order)
//! and publishes each change on Buncast topic `bundoc.{collection}`.
//!
//! One file per job: [`bundoc`] (the state: store, bus, encryption,
//! limits, definitions), [`access`] (who may do what), [`collections`],
//! [`writes`], [`queries`], [`commit`] (the per-project committers) and
//! [`watch`] (realtime queries). Each adds its part of `impl Bundoc`;
//! none imports this file, so there is no import circle.

mod access;
mod bundoc;
mod collections;
mod commit;
mod queries;
mod watch;
mod writes;

pub use bundoc::{Bundoc, DocsLimits};
pub use commit::{Change, changes_topic};
pub use watch::{Watch, WatchEvent};
pub use writes::WriteOp;
