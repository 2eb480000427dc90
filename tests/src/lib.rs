//! Shared helpers for the cross-crate tests and benchmark programs.
