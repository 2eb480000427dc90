//! Identity: who is calling, for which project, with what rights.
//!
//! - [`model`]: accounts, end users (per project), sessions, API keys.
//! - [`Identity`] (service): sign-up/in, refresh rotation, sign-out,
//!   projects and members, API keys, and [`Identity::resolve`] — any
//!   credential to a [`Principal`].
//! - [`AuthStore`] (and [`crate::platform::ProjectStore`]): storage, with
//!   `memory`, `sqlite` and `postgres` adapters.
//! - [`TokenVerifier`]: what shells call; [`StaticTokens`] for configured
//!   service tokens, [`Identity`] for everything else.

pub mod adapters;
pub mod jwt;
mod metrics;
pub mod model;
pub mod password;
mod principal;
pub mod ratelimit;
pub mod secrets;
mod service;
#[cfg(test)]
mod service_tests;
mod static_tokens;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod verifier;

pub use metrics::AuthMetrics;
pub use principal::{Access, Principal, PrincipalKind, Rights};
pub use service::{
    AccountPolicy, AccountSession, Audience, ClientInfo, Identity, IdentityConfig, IssuedTokens,
    NewKey, SignUp, UserInfo, UsersPage,
};
pub use static_tokens::StaticTokens;
pub use store::{AuthStore, IdentityStore};
pub use verifier::{TokenVerifier, Verifiers};
