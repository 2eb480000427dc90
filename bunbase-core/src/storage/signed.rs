//! Signed URLs: one key, one method, until a time, optionally bound to a
//! content type and a largest size. The URL carries `expires`, the bounds
//! and `signature` = HMAC-SHA256 of all of them with the project, bucket
//! and key under the storage secret; it needs no other credential.

use serde::{Deserialize, Serialize};

use super::access::RuleOp;
use super::secret::StorageSecret;
use crate::error::Error;
use crate::id::ProjectId;

/// Longest validity of a signed URL: 7 days (as S3's presigned URLs).
pub const MAX_SIGNED_SECS: u64 = 7 * 24 * 3600;

/// What a signed URL lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignedMethod {
    Get,
    Put,
}

impl SignedMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignedMethod::Get => "GET",
            SignedMethod::Put => "PUT",
        }
    }
}

/// A signed URL's parameters, as they travel in its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedParams {
    /// Seconds since the epoch.
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    pub signature: String,
}

/// A verified signed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedGrant {
    pub project: ProjectId,
    pub bucket: String,
    pub key: String,
    pub method: SignedMethod,
    pub content_type: Option<String>,
    pub max_size: Option<u64>,
}

impl SignedGrant {
    /// Whether it covers `op` in `project`'s `bucket` (the key was part
    /// of the signature).
    pub(crate) fn permits(
        &self,
        project: &ProjectId,
        bucket: &str,
        op: RuleOp,
    ) -> Result<(), Error> {
        let wanted = match op {
            RuleOp::Read => SignedMethod::Get,
            RuleOp::Write => SignedMethod::Put,
            RuleOp::Delete => {
                return Err(Error::PermissionDenied("a signed URL never deletes".into()));
            }
        };
        if &self.project != project || self.bucket != bucket || self.method != wanted {
            return Err(Error::PermissionDenied(
                "the signed URL is not for this request".into(),
            ));
        }
        Ok(())
    }
}

fn message(
    project: &ProjectId,
    bucket: &str,
    key: &str,
    method: SignedMethod,
    expires: u64,
    content_type: Option<&str>,
    max_size: Option<u64>,
) -> Vec<u8> {
    // Length-prefixed fields: no two different grants sign the same bytes.
    let mut out = b"bunbase-signed-url-v1".to_vec();
    let fields = [
        project.as_str().to_string(),
        bucket.to_string(),
        key.to_string(),
        method.as_str().to_string(),
        expires.to_string(),
        content_type.unwrap_or("").to_string(),
        max_size.map(|m| m.to_string()).unwrap_or_default(),
    ];
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

pub(crate) fn sign(secret: &StorageSecret, grant: &SignedGrant, expires: u64) -> SignedParams {
    let signature = secret.sign(&message(
        &grant.project,
        &grant.bucket,
        &grant.key,
        grant.method,
        expires,
        grant.content_type.as_deref(),
        grant.max_size,
    ));
    SignedParams {
        expires,
        content_type: grant.content_type.clone(),
        max_size: grant.max_size,
        signature,
    }
}

/// The grant `params` sign for this request, or 403.
pub(crate) fn verify(
    secret: &StorageSecret,
    project: &ProjectId,
    bucket: &str,
    key: &str,
    method: SignedMethod,
    params: &SignedParams,
    now_secs: u64,
) -> Result<SignedGrant, Error> {
    let signed = message(
        project,
        bucket,
        key,
        method,
        params.expires,
        params.content_type.as_deref(),
        params.max_size,
    );
    if !secret.verify(&signed, &params.signature) {
        return Err(Error::PermissionDenied(
            "the signed URL's signature does not match: it was altered or is for another request"
                .into(),
        ));
    }
    if now_secs >= params.expires {
        return Err(Error::PermissionDenied("the signed URL has expired".into()));
    }
    Ok(SignedGrant {
        project: project.clone(),
        bucket: bucket.to_string(),
        key: key.to_string(),
        method,
        content_type: params.content_type.clone(),
        max_size: params.max_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn tampering_and_expiry_are_refused() {
        let secret = StorageSecret::new(&[1; 32]);
        let p = ProjectId::new("p").unwrap();
        let grant = SignedGrant {
            project: p.clone(),
            bucket: "b".into(),
            key: "k".into(),
            method: SignedMethod::Put,
            content_type: Some("image/png".into()),
            max_size: Some(10),
        };
        let params = sign(&secret, &grant, 1000);
        let ok = verify(&secret, &p, "b", "k", SignedMethod::Put, &params, 999).unwrap();
        assert_eq!(ok, grant);
        let denied = |r: Result<SignedGrant, Error>| {
            assert_eq!(r.unwrap_err().code(), ErrorCode::PermissionDenied)
        };
        denied(verify(
            &secret,
            &p,
            "b",
            "k",
            SignedMethod::Put,
            &params,
            1000,
        ));
        denied(verify(
            &secret,
            &p,
            "b",
            "k2",
            SignedMethod::Put,
            &params,
            1,
        ));
        denied(verify(&secret, &p, "b", "k", SignedMethod::Get, &params, 1));
        let q = ProjectId::new("q").unwrap();
        denied(verify(&secret, &q, "b", "k", SignedMethod::Put, &params, 1));
        let mut bigger = params.clone();
        bigger.max_size = Some(11);
        denied(verify(&secret, &p, "b", "k", SignedMethod::Put, &bigger, 1));
        let mut later = params.clone();
        later.expires += 1;
        denied(verify(&secret, &p, "b", "k", SignedMethod::Put, &later, 1));
    }
}
