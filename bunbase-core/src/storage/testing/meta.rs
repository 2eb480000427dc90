//! The metadata store conformance suite.
