//! Function stores: `memory`, SQL (SQLite, Postgres).

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;
