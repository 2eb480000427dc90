//! BunKMS: keys, envelope encryption, signing, MACs, secrets and a
//! tamper-evident audit log.
//!
//! Key hierarchy:
//! - the **master key** (32 bytes, from `BUNKMS_MASTER_KEY(_FILE)`) never
//!   leaves the process; it wraps every stored key version and secret
//!   value ([`master`]);
//! - **key versions** (AES-256-GCM, Ed25519, ECDSA P-256, HMAC-SHA256) are
//!   stored wrapped, bound to their project, name and version, so a
//!   wrapped key moved to another row does not unwrap ([`crypto`]);
//! - **data keys** (envelope encryption) are made per request and
//!   returned wrapped under a project key; BunKMS keeps none of them.
//!
//! Ciphertexts carry their own key name, version and nonce
//! ([`ciphertext`]), so rotation never strands old data. The audit log
//! chains each record to the previous one's hash ([`audit`]).

pub mod adapters;
pub mod audit;
pub mod ciphertext;
pub mod crypto;
pub mod keys;
pub mod master;
mod metrics;
pub mod model;
mod refusals;
pub mod rewrap;
mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod service_tests;

pub use keys::{DataKey, Keys, LocalKeys};
pub use metrics::KmsMetrics;
pub use model::{AuditQuery, Key, KeyInfo, KeyState, SecretInfo, VersionInfo};
pub use service::{AuditPage, Kms, KmsLimits, Sealed};
pub use store::KmsStore;
