use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bunbase_core::auth::{Audience, UsersPage};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PlatformState;
use super::accounts::{Credentials, RefreshBody, optional_body};
use super::extract::{Bearer, ProjectKey, client};
use crate::kit::{ApiJson, ApiQuery, ApiResult, Caller, ClientIp};

pub async fn sign_up(
    State(state): State<PlatformState>,
    ProjectKey(project): ProjectKey,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let (id, tokens) = state
        .identity
        .sign_up(
            Audience::Users(&project),
            &body.email,
            &body.password,
            client(ip),
        )
        .await?;
    let mut answer = serde_json::to_value(&tokens).unwrap_or_default();
    answer["user"] = json!({ "id": id, "project": project });
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

pub async fn sign_in(
    State(state): State<PlatformState>,
    ProjectKey(project): ProjectKey,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<ApiJson<Value>> {
    let tokens = state
        .identity
        .sign_in(
            Audience::Users(&project),
            &body.email,
            &body.password,
            client(ip),
        )
        .await?;
    Ok(ApiJson(serde_json::to_value(&tokens).unwrap_or_default()))
}

pub async fn refresh(
    State(state): State<PlatformState>,
    ProjectKey(project): ProjectKey,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<ApiJson<Value>> {
    let tokens = state
        .identity
        .refresh(&body.refresh_token, Some(&project))
        .await?;
    Ok(ApiJson(serde_json::to_value(&tokens).unwrap_or_default()))
}

pub async fn sign_out(
    State(state): State<PlatformState>,
    ProjectKey(project): ProjectKey,
    Bearer(token): Bearer,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let everywhere = optional_body(&body)?.everywhere;
    // The token must be an end user's of this very project.
    state.identity.me(&token, Some(&project)).await?;
    if everywhere {
        state.identity.sign_out_everywhere(&token).await?;
    } else {
        state.identity.sign_out(&token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(
    State(state): State<PlatformState>,
    ProjectKey(project): ProjectKey,
    Bearer(token): Bearer,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(state.identity.me(&token, Some(&project)).await?))
}

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
        .identity
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
    state.identity.delete_user(&who, &project, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
