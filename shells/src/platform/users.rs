use axum::extract::{Path, State};
use axum::http::StatusCode;
use bunbase_core::auth::UsersPage;
use serde::Deserialize;

use super::PlatformState;
use crate::kit::{ApiJson, ApiQuery, ApiResult, Caller};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    after: Option<String>,
    limit: Option<usize>,
}

/// A project's users, for its admins (an owner's or admin's account token,
/// or a secret key), by id, paged with `?after=<last id>&limit=`.
pub async fn list(
    State(state): State<PlatformState>,
    Caller { who, project }: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<ApiJson<UsersPage>> {
    let limit = page.limit.unwrap_or(100);
    let users = state
        .users(&who, &project, page.after.as_deref(), limit)
        .await?;
    Ok(ApiJson(users))
}

#[derive(Deserialize)]
pub struct UserPath {
    user: String,
}

pub async fn delete(
    State(state): State<PlatformState>,
    Caller { who, project }: Caller,
    Path(UserPath { user }): Path<UserPath>,
) -> ApiResult<StatusCode> {
    state.delete_user(&who, &project, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
