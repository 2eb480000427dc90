//! Bundoc: JSON documents in collections, per project (issue 6, in
//! progress). So far the query language, in memory:
//!
//! - [`order`]: the one total order of JSON values across types, used by
//!   comparisons and sorting everywhere (adapters must agree with it);
//! - [`path`]: dotted paths into nested documents (`address.city`,
//!   `items.0.sku`);
//! - [`filter`]: filters (`$eq $ne $gt $gte $lt $lte $in $nin $exists $and
//!   $or $not`, array membership) parsed with clear errors and evaluated —
//!   the reference every store adapter is tested against;
//! - [`query`]: sort, limit, opaque cursors and projection over it;
//! - [`document`]: incoming documents' checks (size, depth, names, `_id`)
//!   and JSON Merge Patch;
//! - [`rules`]: access rule expressions over `auth`, `resource` and
//!   `request` (`resource.owner == auth.uid`).

pub mod adapters;
mod crypt;
pub mod document;
pub mod filter;
pub mod index;
pub mod keys;
mod metrics;
pub mod model;
pub mod order;
pub mod path;
pub mod plan;
#[cfg(any(test, feature = "testing"))]
pub mod property;
pub mod query;
pub mod rules;
pub mod schema;
mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use crypt::KMS_KEY;
pub use metrics::DocsMetrics;
pub use model::{Collection, Operation};
pub use plan::Stats;
pub use query::{Page, Query};
pub use service::{Bundoc, Change, DocsLimits, Watch, WatchEvent, WriteOp, changes_topic};
pub use store::{DocStore, Quota, Usage};

#[cfg(test)]
mod service_tests;
