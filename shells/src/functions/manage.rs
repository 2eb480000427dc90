//! The management API: deploy, list, inspect, roll back, delete, logs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bunbase_core::functions::{Deployment, FunctionName, Invocation, LogQuery};
use bunbase_core::{Error, ProjectId};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::FunctionsState;
use crate::kit::revocation::Revoked;
use crate::kit::sse::{SseFrame, sse_response, write_frame};
use crate::kit::{ApiJson, ApiQuery, ApiResult, Bearer, Caller};

#[derive(Deserialize)]
pub struct NamePath {
    name: String,
}

pub async fn list(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(axum::Json(json!({ "functions": state.functions(&who, &project).await? })).into_response())
}

pub async fn deploy_named(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    // `flatten` and `deny_unknown_fields` do not combine in serde: read the
    // name, then the rest strictly.
    let mut value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))?;
    let name = value
        .as_object_mut()
        .and_then(|o| o.remove("name"))
        .and_then(|n| n.as_str().map(str::to_string))
        .ok_or_else(|| Error::invalid("the body needs \"name\": the function's name"))?;
    let deployment: Deployment = serde_json::from_value(value)
        .map_err(|e| Error::invalid(format!("invalid deployment: {e}")))?;
    let version = state.deploy(&who, &project, &name, deployment).await?;
    Ok((StatusCode::CREATED, axum::Json(version)).into_response())
}

pub async fn deploy(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
    ApiJson(deployment): ApiJson<Deployment>,
) -> ApiResult<Response> {
    let version = state.deploy(&who, &project, &name, deployment).await?;
    Ok((StatusCode::CREATED, axum::Json(version)).into_response())
}

pub async fn get(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
) -> ApiResult<Response> {
    Ok(axum::Json(state.function(&who, &project, &name).await?).into_response())
}

pub async fn versions(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
) -> ApiResult<Response> {
    Ok(
        axum::Json(json!({ "versions": state.versions(&who, &project, &name).await? }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceQuery {
    version: Option<u32>,
}

pub async fn source(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
    ApiQuery(query): ApiQuery<SourceQuery>,
) -> ApiResult<Response> {
    let (version, files) = state.source(&who, &project, &name, query.version).await?;
    Ok(
        axum::Json(json!({ "version": version.number, "entry": version.entry, "files": files }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    version: u32,
}

pub async fn rollback(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<Response> {
    Ok(axum::Json(state.rollback(&who, &project, &name, body.version).await?).into_response())
}

pub async fn delete(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    Path(NamePath { name }): Path<NamePath>,
) -> ApiResult<Response> {
    state.delete(&who, &project, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    function: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

impl LogParams {
    fn function(&self) -> Result<Option<FunctionName>, Error> {
        self.function.as_deref().map(FunctionName::new).transpose()
    }
}

pub async fn logs(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    ApiQuery(params): ApiQuery<LogParams>,
) -> ApiResult<Response> {
    let query = LogQuery {
        function: params.function()?,
        before: params.before.clone(),
        limit: params.limit.unwrap_or(100).clamp(1, 1000),
    };
    let invocations = state.logs(&who, &project, &query).await?;
    let next = (invocations.len() == query.limit)
        .then(|| invocations.last().map(|i| i.id.clone()))
        .flatten();
    Ok(axum::Json(json!({ "invocations": invocations, "next": next })).into_response())
}

/// One frame of the live log.
pub enum LogFrame {
    Invocation(Arc<Invocation>),
    /// The subscriber fell behind and missed this many records.
    Skipped(u64),
    Revoked,
}

impl SseFrame for LogFrame {
    fn write(&self, buf: &mut bytes::BytesMut) {
        match self {
            LogFrame::Invocation(record) => {
                let data = serde_json::to_string(record.as_ref()).unwrap_or_default();
                write_frame(buf, Some("invocation"), None, &data)
            }
            LogFrame::Skipped(n) => write_frame(
                buf,
                Some("skipped"),
                None,
                &json!({ "missed": n }).to_string(),
            ),
            LogFrame::Revoked => write_frame(
                buf,
                Some("closed"),
                None,
                &json!({ "type": "closed", "reason": "revoked" }).to_string(),
            ),
        }
    }

    fn is_last(&self) -> bool {
        matches!(self, LogFrame::Revoked)
    }
}

impl Revoked for LogFrame {
    fn revoked() -> Self {
        LogFrame::Revoked
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    function: Option<String>,
}

/// Server-Sent Events: each invocation record of the project as it is
/// written (`event: invocation`).
pub async fn stream_logs(
    State(state): State<FunctionsState>,
    Caller { who, project }: Caller,
    credential: Bearer,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> ApiResult<Response> {
    let function = params
        .function
        .as_deref()
        .map(FunctionName::new)
        .transpose()?;
    let receiver = state.live_logs(&who, &project)?;
    let frames = BroadcastStream::new(receiver).filter_map(move |item| {
        let keep = match item {
            Ok(record) => {
                mine(&record, &project, function.as_ref()).then_some(LogFrame::Invocation(record))
            }
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(LogFrame::Skipped(n)),
        };
        std::future::ready(keep)
    });
    let project = who.project.clone();
    Ok(sse_response(
        state.guard(Box::pin(frames), credential, &project),
        None,
        state.keepalive,
    ))
}

fn mine(record: &Invocation, project: &ProjectId, function: Option<&FunctionName>) -> bool {
    &record.project == project && function.is_none_or(|f| &record.function == f)
}
