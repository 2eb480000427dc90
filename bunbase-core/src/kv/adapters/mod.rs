//! KvStore adapters: `memory` (the engine in this process — the
//! all-in-one's default) and `bunder` (any Redis-protocol server).

#[cfg(feature = "bunder")]
pub mod bunder;
pub mod memory;
