use async_trait::async_trait;

use super::Principal;
use crate::error::Error;

/// Turns a bearer credential into a [`Principal`], or `unauthenticated`.
///
/// Implementations: [`super::StaticTokens`] (config), the identity service's
/// in-process verifier, and a remote one in `bunbase-client`.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    async fn verify(&self, token: &str) -> Result<Principal, Error>;
}
