use std::sync::Arc;

use async_trait::async_trait;

use super::Principal;
use crate::ErrorCode;
use crate::error::Error;
use crate::id::ProjectId;

/// Turns a bearer credential, presented for `project`, into a [`Principal`],
/// or `unauthenticated`.
///
/// The project matters for account tokens (an account's rights depend on its
/// role in that project); project-bound credentials (keys, end-user tokens,
/// service tokens) resolve to their own project whatever is asked, and
/// [`Principal::authorize`] then refuses a mismatch.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    async fn verify(&self, token: &str, project: &ProjectId) -> Result<Principal, Error>;
}

/// Tries verifiers in order; the first that accepts the credential wins.
/// If none does, the most telling refusal is returned (`permission_denied`
/// over `unauthenticated`), and infrastructure errors are never hidden.
pub struct Verifiers(pub Vec<Arc<dyn TokenVerifier>>);

#[async_trait]
impl TokenVerifier for Verifiers {
    async fn verify(&self, token: &str, project: &ProjectId) -> Result<Principal, Error> {
        let mut refusal: Option<Error> = None;
        for verifier in &self.0 {
            match verifier.verify(token, project).await {
                Ok(principal) => return Ok(principal),
                Err(e) if e.code() == ErrorCode::Unauthenticated => {
                    if refusal.is_none() {
                        refusal = Some(e);
                    }
                }
                Err(e) => {
                    // The credential was recognised (or the verifier could
                    // not answer): that is the answer.
                    return Err(e);
                }
            }
        }
        Err(refusal.unwrap_or_else(|| Error::Unauthenticated("invalid credential".into())))
    }
}
