//! Conformance suites: every blob store, every metadata store and the
//! service over each pairing must pass them.

pub mod blobs;
pub mod meta;
pub mod service;
