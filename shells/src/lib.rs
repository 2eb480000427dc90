//! BunBase shells: thin network front-ends over `bunbase-core`.
//!
//! [`kit`] turns any service's router into a production HTTP server; each
//! service module (e.g. [`buncast`]) only parses requests, calls core and maps
//! errors. Binaries in `src/bin/` wire configuration to these pieces.

pub mod bunauth;
pub mod buncast;
pub mod bunder;
pub mod bundoc;
pub mod bunkms;
pub mod cli;
pub mod identity;
pub mod kit;
pub mod kvmanager;
pub mod platform;
