//! gRPC: the generated BunAuth types (client and server), the conversions
//! between them and core types, and the remote [`TokenVerifier`].

pub mod bunauth {
    //! Generated from `proto/bunauth/v1/bunauth.proto`.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("bunauth.v1");
}

mod convert;
mod verifier;

pub use convert::{error_from_status, principal_from_proto, principal_to_proto, status_from_error};
pub use verifier::{RemoteVerifier, RemoteVerifierConfig};
