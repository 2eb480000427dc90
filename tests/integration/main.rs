//! Cross-crate tests, compiled into one binary (link time matters).

mod bunauth_grpc;
mod buncast_http;
mod buncast_ws;
mod bunder_server;
mod cache;
mod cascade;
mod client;
mod docs_client;
mod docs_conformance;
mod docs_http;
mod events_conformance;
mod identity_conformance;
mod isolation;
mod kms_conformance;
mod kms_http;
mod kv_conformance;
mod kv_http;
mod ops;
mod platform_binary;
mod platform_http;
mod shutdown;
mod support;
