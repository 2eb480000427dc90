//! Bunder's RESP server (port 6379): the layers of mini-redis — bytes to
//! commands ([`bunbase_core::kv::resp`]), commands to replies (the core
//! engine), and here the connection loop and the accept loop.

mod connection;
mod metrics;
mod server;

pub use metrics::BunderCollector;

pub use server::{BunderConfig, serve, serve_shared, spawn_upkeep};
