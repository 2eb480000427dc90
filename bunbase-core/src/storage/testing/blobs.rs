//! The blob store conformance suite.
