use axum::extract::{Path, State};
use axum::http::StatusCode;
use bunbase_core::auth::model::KeyKind;
use bunbase_core::platform::{ProjectView, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PlatformState;
use super::extract::{Account, AccountIn};
use crate::kit::{ApiJson, ApiResult};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    pub email: String,
    pub role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    pub name: String,
    pub kind: String,
}

#[derive(Deserialize)]
pub struct MemberPath {
    account: String,
}

#[derive(Deserialize)]
pub struct KeyPath {
    key: String,
}

pub async fn create(
    State(state): State<PlatformState>,
    Account(who): Account,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let project = state.create_project(&who, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!(ProjectView::new(&project, Role::Owner))),
    ))
}

pub async fn list(
    State(state): State<PlatformState>,
    Account(who): Account,
) -> ApiResult<ApiJson<Value>> {
    let projects: Vec<Value> = state
        .my_projects(&who)
        .await?
        .iter()
        .map(|(p, role)| json!(ProjectView::new(p, *role)))
        .collect();
    Ok(ApiJson(json!({ "projects": projects })))
}

pub async fn get(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
) -> ApiResult<ApiJson<Value>> {
    let (project, role) = state.project(&who, &project).await?;
    Ok(ApiJson(json!(ProjectView::new(&project, role))))
}

pub async fn rename(
    State(state): State<PlatformState>,
    AccountIn { who, project: id }: AccountIn,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<ApiJson<Value>> {
    let project = state.rename_project(&who, &id, &body.name).await?;
    let (_, role) = state.project(&who, &id).await?;
    Ok(ApiJson(json!(ProjectView::new(&project, role))))
}

pub async fn delete(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
) -> ApiResult<StatusCode> {
    state.delete_project(&who, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
) -> ApiResult<ApiJson<Value>> {
    let members = state.members(&who, &project).await?;
    Ok(ApiJson(json!({ "members": members })))
}

pub async fn put_member(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
    ApiJson(body): ApiJson<MemberBody>,
) -> ApiResult<ApiJson<Value>> {
    let role: Role = body.role.parse()?;
    let member = state.put_member(&who, &project, &body.email, role).await?;
    Ok(ApiJson(serde_json::to_value(member).unwrap_or_default()))
}

pub async fn remove_member(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
    Path(MemberPath { account }): Path<MemberPath>,
) -> ApiResult<StatusCode> {
    state.remove_member(&who, &project, &account).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn keys(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
) -> ApiResult<ApiJson<Value>> {
    let keys = state.keys(&who, &project).await?;
    Ok(ApiJson(json!({ "keys": keys })))
}

/// Answers the key once, as `"key"`; only its hash is kept.
pub async fn create_key(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
    ApiJson(body): ApiJson<KeyBody>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let kind = KeyKind::parse(&body.kind)?;
    let created = state.create_key(&who, &project, &body.name, kind).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(serde_json::to_value(created).unwrap_or_default()),
    ))
}

pub async fn revoke_key(
    State(state): State<PlatformState>,
    AccountIn { who, project }: AccountIn,
    Path(KeyPath { key }): Path<KeyPath>,
) -> ApiResult<StatusCode> {
    state.revoke_key(&who, &project, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
