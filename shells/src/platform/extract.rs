//! Request pieces the Platform API needs: the account behind a bearer
//! token (and the project it names), the project key of end-user calls,
//! the client address.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bunbase_core::auth::{AccountSession, ClientInfo};
use bunbase_core::{Error, ProjectId};

use super::PlatformState;
use crate::kit::{ApiError, ClientIp, path_project, require_bearer};

/// The bearer token, required.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Bearer(require_bearer(parts)?))
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
        let token = require_bearer(parts)?;
        Ok(Account(state.identity.account(&token).await?))
    }
}

/// A signed-in developer account and the `{project}` of the route.
pub struct AccountIn {
    pub who: AccountSession,
    pub project: ProjectId,
}

impl FromRequestParts<PlatformState> for AccountIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PlatformState,
    ) -> Result<Self, ApiError> {
        let project = path_project(parts, state).await?;
        let Account(who) = Account::from_request_parts(parts, state).await?;
        Ok(AccountIn { who, project })
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
        let project = path_project(parts, state).await?;
        let key = parts
            .headers
            .get("apikey")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Unauthenticated(
                    "missing apikey header: send the project's publishable key".into(),
                )
            })?;
        Ok(ProjectKey(state.identity.project_key(key, &project).await?))
    }
}

pub fn client(parts_ip: Option<axum::Extension<ClientIp>>) -> ClientInfo {
    ClientInfo {
        ip: parts_ip.and_then(|axum::Extension(ClientIp(ip))| ip),
    }
}
