//! Request pieces the Platform API needs: the account behind a bearer
//! token (and the project it names), the project key of end-user calls,
//! the client address.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use bunbase_core::auth::{AccountSession, Audience, ClientInfo};
use bunbase_core::{Error, ProjectId};

use super::PlatformState;
use crate::kit::{ApiError, ClientIp, path_project, require_bearer};

/// A signed-in developer account.
pub struct Account(pub AccountSession);

impl FromRequestParts<PlatformState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PlatformState,
    ) -> Result<Self, ApiError> {
        let token = require_bearer(parts)?;
        Ok(Account(state.account(&token).await?))
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

/// Whose sign-in routes a request is on: the platform's accounts, or a
/// project's end users — the routes under `{project}`, whose calls carry the
/// project's publishable (or secret) key in the `apikey` header.
pub enum Realm {
    Accounts,
    Users(ProjectId),
}

impl Realm {
    pub fn audience(&self) -> Audience<'_> {
        match self {
            Realm::Accounts => Audience::Accounts,
            Realm::Users(project) => Audience::Users(project),
        }
    }

    /// The project of end users; `None` for accounts.
    pub fn project(&self) -> Option<&ProjectId> {
        match self {
            Realm::Accounts => None,
            Realm::Users(project) => Some(project),
        }
    }
}

impl FromRequestParts<PlatformState> for Realm {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PlatformState,
    ) -> Result<Self, ApiError> {
        let scoped = RawPathParams::from_request_parts(parts, state)
            .await
            .is_ok_and(|params| params.iter().any(|(name, _)| name == "project"));
        if !scoped {
            return Ok(Realm::Accounts);
        }
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
        Ok(Realm::Users(state.project_key(key, &project).await?))
    }
}

pub fn client(parts_ip: Option<axum::Extension<ClientIp>>) -> ClientInfo {
    ClientInfo {
        ip: parts_ip.and_then(|axum::Extension(ClientIp(ip))| ip),
    }
}
