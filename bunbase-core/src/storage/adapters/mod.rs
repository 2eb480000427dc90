//! Storage adapters. Blobs: `memory`, `fs` (the all-in-one), `s3` (any S3
//! server; MinIO in compose). Metadata: `memory`, SQL (SQLite, Postgres).

pub mod fs;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sql")]
pub mod sql;
