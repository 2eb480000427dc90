//! Identity: who is calling, for which project, with what rights.
//!
//! This issue ships the [`Principal`] model, the [`TokenVerifier`] trait and
//! the [`StaticTokens`] verifier (service tokens from config). The identity
//! service plugs its real verifier in behind the same trait.

mod principal;
mod static_tokens;
mod verifier;

pub use principal::{Access, Principal, PrincipalKind, Rights};
pub use static_tokens::StaticTokens;
pub use verifier::TokenVerifier;
