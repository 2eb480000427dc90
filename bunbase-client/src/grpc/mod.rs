//! gRPC: the generated BunAuth types (client and server), the conversions
//! between them and core types, and the remote [`TokenVerifier`].

mod convert;
mod proto;
mod verifier;

pub use convert::{error_from_status, principal_from_proto, principal_to_proto, status_from_error};
pub use proto::bunauth;
pub use verifier::{RemoteVerifier, RemoteVerifierConfig};
