//! BunBase shells: thin network front-ends over `bunbase-core`.
//!
//! [`kit`] turns any service's router into a production HTTP server; each
//! service module (e.g. [`buncast`]) only parses requests, calls core and maps
//! errors, and offers a [`assembly::ServiceModule`]. The all-in-one, each
//! standalone binary ([`standalone`]) and the tests assemble those modules.

pub mod all_in_one;
pub mod assembly;
pub mod bunauth;
pub mod buncast;
pub mod bunder;
pub mod bundoc;
pub mod bunkms;
pub mod cli;
pub mod functions;
pub mod identity;
pub mod kit;
pub mod kvmanager;
pub mod platform;
pub mod standalone;
pub mod storage;
