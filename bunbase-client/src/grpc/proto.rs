//! The BunAuth types and stubs generated from
//! `proto/bunauth/v1/bunauth.proto` (client and server).

pub mod bunauth {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("bunauth.v1");
}
