//! Bunder: the key-value engine behind our Redis-compatible server.
//!
//! - [`resp`]: the RESP2/RESP3 wire format (parsing is incremental and
//!   bounded: a partial frame is `Incomplete`, never an error; a lying length
//!   never allocates what it claims).
//! - [`reply`]: what a command answers, before encoding.
//! - [`engine`]: the keyspace (numbered databases, sharded across locks so
//!   both cores work) and command execution with Redis's semantics and
//!   error texts.

pub mod accounted;
pub mod adapters;
pub mod aof;
pub mod engine;
pub mod glob;
mod metrics;
pub mod pubsub;
pub mod reply;
pub mod resp;
pub mod runner;
mod service;
pub mod snapshot;
mod store;
mod strings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tx;
mod types;

pub use engine::{Engine, EngineConfig};
pub use metrics::KvMetrics;
pub use reply::Reply;
pub use service::{CHANGES_TOPIC, KeyPage, Kv, KvLimits, PutRequest, UsageReport};
pub use store::{Condition, KvStore, MAX_KEY_LEN, PutOptions, Quota, Revision, ScanPage, Usage};

#[cfg(test)]
mod engine_tests;
