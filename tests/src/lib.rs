//! Shared helpers for the cross-crate tests and the benchmark programs.

pub mod harness;
pub mod servers;
