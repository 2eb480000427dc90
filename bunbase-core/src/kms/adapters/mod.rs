//! KmsStore adapters: `memory` (tests, embedders); SQLite and Postgres
//! follow.

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;
