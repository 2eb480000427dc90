//! Multipart upload handlers (the HTTP API's; the S3 API has its own).

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bunbase_core::Error;
use bunbase_core::storage::{CompletedPart, ObjectPath, PartIn};
use serde::Deserialize;
use serde_json::json;

use super::StorageState;
use super::objects::{body_stream, content_length};
use crate::kit::{ApiJson, ApiResult, Caller};

#[derive(Deserialize)]
pub struct BucketRoute {
    bucket: String,
}

#[derive(Deserialize)]
pub struct UploadRoute {
    bucket: String,
    upload: String,
}

#[derive(Deserialize)]
pub struct PartRoute {
    bucket: String,
    upload: String,
    number: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    key: String,
    content_type: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

pub async fn create(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(BucketRoute { bucket }): Path<BucketRoute>,
    ApiJson(req): ApiJson<CreateUpload>,
) -> ApiResult<Response> {
    let at = ObjectPath::new(&bucket, &req.key)?;
    let upload = state
        .create_upload(&who, &project, &at, req.content_type, req.metadata)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(upload)).into_response())
}

pub async fn list(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(BucketRoute { bucket }): Path<BucketRoute>,
) -> ApiResult<Response> {
    Ok(
        axum::Json(json!({ "uploads": state.uploads(&who, &project, &bucket).await? }))
            .into_response(),
    )
}

/// The upload's place, from the upload itself.
async fn place(
    state: &StorageState,
    who: &bunbase_core::auth::Principal,
    project: &bunbase_core::ProjectId,
    bucket: &str,
    upload: &str,
) -> Result<ObjectPath, Error> {
    let found = state.upload(who, project, bucket, upload).await?;
    ObjectPath::new(bucket, &found.key)
}

pub async fn parts(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(UploadRoute { bucket, upload }): Path<UploadRoute>,
) -> ApiResult<Response> {
    let at = place(&state, &who, &project, &bucket, &upload).await?;
    Ok(
        axum::Json(json!({ "parts": state.parts(&who, &project, &at, &upload).await? }))
            .into_response(),
    )
}

pub async fn put_part(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(PartRoute {
        bucket,
        upload,
        number,
    }): Path<PartRoute>,
    request: Request,
) -> ApiResult<Response> {
    let at = place(&state, &who, &project, &bucket, &upload).await?;
    let (parts, body) = request.into_parts();
    let length = content_length(&parts.headers)?;
    let part = state
        .upload_part(
            &who,
            &project,
            &at,
            &upload,
            PartIn {
                number,
                length: Some(length),
            },
            body_stream(body),
        )
        .await?;
    Ok(axum::Json(part).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    parts: Vec<CompletedPart>,
}

pub async fn complete(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(UploadRoute { bucket, upload }): Path<UploadRoute>,
    ApiJson(req): ApiJson<Complete>,
) -> ApiResult<Response> {
    let at = place(&state, &who, &project, &bucket, &upload).await?;
    let info = state
        .complete_upload(&who, &project, &at, &upload, &req.parts)
        .await?;
    Ok(axum::Json(info).into_response())
}

pub async fn abort(
    State(state): State<StorageState>,
    Caller { who, project }: Caller,
    Path(UploadRoute { bucket, upload }): Path<UploadRoute>,
) -> ApiResult<Response> {
    let at = place(&state, &who, &project, &bucket, &upload).await?;
    state.abort_upload(&who, &project, &at, &upload).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
