//! Cross-crate tests, compiled into one binary (link time matters).

mod events_conformance;
