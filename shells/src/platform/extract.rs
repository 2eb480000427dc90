//! Request pieces the Platform API needs: the account behind a bearer
//! token, the project key of end-user calls, the client address.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use bunbase_core::auth::{AccountSession, ClientInfo, PrincipalKind};
use bunbase_core::{Error, ProjectId};

use super::PlatformState;
use crate::kit::{ApiError, ClientIp, bearer_token};

/// The bearer token, required.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.ok_or_else(|| {
            Error::Unauthenticated("missing credential: send Authorization: Bearer <token>".into())
        })?;
        Ok(Bearer(token))
    }
}

/// A signed-in developer account.
pub struct Account(pub AccountSession);

impl FromRequestParts<PlatformState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PlatformState,
    ) -> Result<Self, ApiError> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        Ok(Account(state.identity.account(&token).await?))
    }
}

/// End-user calls carry the project's publishable (or secret) key in the
/// `apikey` header: it names the project the user belongs to.
pub struct ProjectKey(pub ProjectId);

impl FromRequestParts<PlatformState> for ProjectKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PlatformState,
    ) -> Result<Self, ApiError> {
        let Path(params): Path<std::collections::HashMap<String, String>> =
            Path::from_request_parts(parts, state)
                .await
                .map_err(|e| Error::invalid(format!("invalid path: {}", e.body_text())))?;
        let project = ProjectId::new(params.get("project").cloned().unwrap_or_default())?;
        let key = parts
            .headers
            .get("apikey")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Unauthenticated(
                    "missing apikey header: send the project's publishable key".into(),
                )
            })?;
        // Only keys here: an account or end-user token is refused before it
        // is resolved (it would otherwise answer 403 for non-members).
        if !(key.starts_with("bb_pk_") || key.starts_with("bb_sk_")) {
            return Err(
                Error::Unauthenticated("the apikey header must hold a project key".into()).into(),
            );
        }
        let principal = state.identity.resolve(key, &project).await?;
        let is_key = matches!(
            principal.kind,
            PrincipalKind::PublishableKey | PrincipalKind::SecretKey
        );
        if !is_key {
            return Err(
                Error::Unauthenticated("the apikey header must hold a project key".into()).into(),
            );
        }
        if principal.project != project {
            return Err(
                Error::PermissionDenied(format!("this key is not for project {project}")).into(),
            );
        }
        Ok(ProjectKey(project))
    }
}

pub fn client(parts_ip: Option<axum::Extension<ClientIp>>) -> ClientInfo {
    ClientInfo {
        ip: parts_ip.and_then(|axum::Extension(ClientIp(ip))| ip),
    }
}
