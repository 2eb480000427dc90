//! Bucket handlers, signed URLs, usage and S3 credentials.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bunbase_core::storage::{BucketPatch, BucketRules, BucketSettings, SignRequest};
use serde::Deserialize;
use serde_json::json;

use super::StorageState;
use crate::kit::{ApiJson, ApiQuery, ApiResult, Caller};

#[derive(Deserialize)]
pub struct BucketPath {
    bucket: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBucket {
    name: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    allowed_content_types: Vec<String>,
    #[serde(default)]
    max_object_size: Option<u64>,
    #[serde(default)]
    rules: BucketRules,
}

pub async fn list(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(axum::Json(json!({ "buckets": state.buckets(&who, &project).await? })).into_response())
}

pub async fn create(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    ApiJson(req): ApiJson<CreateBucket>,
) -> ApiResult<Response> {
    let settings = BucketSettings {
        public: req.public,
        allowed_content_types: req.allowed_content_types,
        max_object_size: req.max_object_size,
        rules: req.rules,
    };
    let bucket = state
        .create_bucket(&who, &project, &req.name, settings)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(bucket)).into_response())
}

pub async fn get(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(BucketPath { bucket }): Path<BucketPath>,
) -> ApiResult<Response> {
    Ok(axum::Json(state.bucket(&who, &project, &bucket).await?).into_response())
}

pub async fn update(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(BucketPath { bucket }): Path<BucketPath>,
    ApiJson(patch): ApiJson<BucketPatch>,
) -> ApiResult<Response> {
    Ok(axum::Json(state.update_bucket(&who, &project, &bucket, patch).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

pub async fn delete(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(BucketPath { bucket }): Path<BucketPath>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    state
        .delete_bucket(&who, &project, &bucket, query.force)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn sign(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(BucketPath { bucket }): Path<BucketPath>,
    ApiJson(req): ApiJson<SignRequest>,
) -> ApiResult<Response> {
    Ok(axum::Json(state.sign(&who, &project, &bucket, req).await?).into_response())
}

pub async fn usage(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    let (usage, quota) = state.usage(&who, &project).await?;
    Ok(axum::Json(json!({ "usage": usage, "quota": quota })).into_response())
}

pub async fn credentials(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(
        axum::Json(json!({ "credentials": state.s3_credentials(&who, &project).await? }))
            .into_response(),
    )
}

pub async fn create_credential(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    let made = state.create_s3_credential(&who, &project).await?;
    Ok((StatusCode::CREATED, axum::Json(made)).into_response())
}

#[derive(Deserialize)]
pub struct CredentialPath {
    access_key: String,
}

pub async fn revoke_credential(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(CredentialPath { access_key }): Path<CredentialPath>,
) -> ApiResult<Response> {
    state
        .revoke_s3_credential(&who, &project, &access_key)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
