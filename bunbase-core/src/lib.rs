//! BunBase core: every piece of domain logic, behind traits.
//!
//! Each domain module has the same four rooms: `model` (types), `service`
//! (the API shells and embedders call), a storage/transport trait, and
//! `adapters/`. Shells (HTTP, gRPC, RESP) are thin layers over this crate.

pub mod auth;
pub mod cache;
pub mod config;
pub mod docs;
pub mod error;
pub mod events;
pub mod functions;
pub mod id;
pub mod kms;
pub mod kv;
pub mod metrics;
pub mod platform;
#[cfg(feature = "sql")]
pub mod sql;
pub mod storage;

pub use error::{Error, ErrorCode, Result};
pub use id::ProjectId;
