//! Shared helpers for the cross-crate tests and the benchmark programs.

#[cfg(feature = "bench")]
pub mod bench;
pub mod harness;
pub mod scenario;
pub mod seaweed;
pub mod servers;
