//! `DocStore` adapters: memory, and SQL (SQLite for the all-in-one,
//! Postgres for compose).

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;

pub use memory::MemoryDocStore;
