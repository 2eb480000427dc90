use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::kv::{Condition, PutRequest};
use bunbase_core::{Error, ErrorCode, ProjectId};
use serde::Deserialize;
use serde_json::json;

use super::KvState;
use crate::buncast::routes::resume_point;
use crate::buncast::sse::stream_response;
use crate::kit::{ApiResult, Auth, body_error};

type KeyPath = Path<(String, String)>;

fn project(raw: String) -> Result<ProjectId, Error> {
    ProjectId::new(raw)
}

pub async fn get(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path((project_id, key)): KeyPath,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    let value = state
        .kv
        .get(&who, &project, &key)
        .await?
        .ok_or_else(|| Error::not_found(format!("key {key:?}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        value,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutQuery {
    ttl: Option<String>,
    ttl_ms: Option<String>,
    #[serde(rename = "if")]
    condition: Option<String>,
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// `?ttl=` (seconds) or `?ttl_ms=`, not both.
fn parse_ttl(query: &PutQuery) -> Result<Option<Duration>, Error> {
    let parse = |raw: &str, what: &str| {
        raw.parse::<u64>()
            .map_err(|_| Error::invalid(format!("{what} must be a whole number, not {raw:?}")))
    };
    match (&query.ttl, &query.ttl_ms) {
        (Some(_), Some(_)) => Err(Error::invalid("give ttl (seconds) or ttl_ms, not both")),
        (Some(s), None) => Ok(Some(Duration::from_secs(parse(s, "ttl")?))),
        (None, Some(ms)) => Ok(Some(Duration::from_millis(parse(ms, "ttl_ms")?))),
        (None, None) => Ok(None),
    }
}

/// The write condition from `?if=` or the `If-None-Match: *` /
/// `If-Match: *` headers.
fn parse_condition(query: &PutQuery, headers: &HeaderMap) -> Result<Condition, Error> {
    let star = |name: header::HeaderName| -> Result<bool, Error> {
        match headers.get(&name) {
            None => Ok(false),
            Some(v) if v.as_bytes() == b"*" => Ok(true),
            Some(_) => Err(Error::invalid(format!(
                "{name} supports only `*` (keys have no entity tags)"
            ))),
        }
    };
    let from_header = match (star(header::IF_NONE_MATCH)?, star(header::IF_MATCH)?) {
        (true, true) => return Err(Error::invalid("If-None-Match and If-Match contradict")),
        (true, false) => Some(Condition::IfAbsent),
        (false, true) => Some(Condition::IfPresent),
        (false, false) => None,
    };
    let from_query = match query.condition.as_deref() {
        None => None,
        Some("absent") => Some(Condition::IfAbsent),
        Some("present") => Some(Condition::IfPresent),
        Some(other) => {
            return Err(Error::invalid(format!(
                "if must be absent or present, not {other:?}"
            )));
        }
    };
    match (from_header, from_query) {
        (Some(a), Some(b)) if a != b => Err(Error::invalid(
            "the ?if= condition contradicts the If-(None-)Match header",
        )),
        (a, b) => Ok(a.or(b).unwrap_or_default()),
    }
}

pub async fn put(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path((project_id, key)): KeyPath,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    let value = body.map_err(body_error)?;
    let request = PutRequest {
        ttl: parse_ttl(&query)?,
        condition: parse_condition(&query, &headers)?,
    };
    let written = state.kv.put(&who, &project, &key, value, request).await?;
    if !written {
        let message = match request.condition {
            Condition::IfAbsent => format!("key {key:?} already exists"),
            _ => format!("key {key:?} does not exist"),
        };
        return Ok((
            StatusCode::PRECONDITION_FAILED,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            crate::kit::error_body(ErrorCode::Conflict, &message),
        )
            .into_response());
    }
    Ok(axum::Json(json!({ "written": true })).into_response())
}

pub async fn delete(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path((project_id, key)): KeyPath,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    let deleted = state.kv.delete(&who, &project, &key).await?;
    Ok(axum::Json(json!({ "deleted": deleted })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrBody {
    #[serde(default = "one")]
    by: i64,
}

fn one() -> i64 {
    1
}

pub async fn incr(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path((project_id, key)): KeyPath,
    body: Bytes,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    // No body increments by one.
    let by = if body.iter().all(u8::is_ascii_whitespace) {
        1
    } else {
        serde_json::from_slice::<IncrBody>(&body)
            .map_err(|e| Error::invalid(format!("invalid increment body: {e}")))?
            .by
    };
    let value = state.kv.incr(&who, &project, &key, by).await?;
    Ok(axum::Json(json!({ "value": value })).into_response())
}

pub async fn ttl(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path((project_id, key)): KeyPath,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    let ttl = state.kv.ttl(&who, &project, &key).await?;
    Ok(axum::Json(json!({ "ttl_ms": ttl.map(|t| t.as_millis() as u64) })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    limit: Option<usize>,
    #[allow(dead_code)]
    access_token: Option<String>,
}

pub async fn list(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path(project_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    let page = state
        .kv
        .scan(
            &who,
            &project,
            &query.prefix,
            query.cursor.as_deref(),
            query.limit,
        )
        .await?;
    Ok(axum::Json(page).into_response())
}

pub async fn usage(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    Ok(axum::Json(state.kv.usage(&who, &project).await?).into_response())
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    after: Option<String>,
    #[allow(dead_code)]
    access_token: Option<String>,
}

pub async fn changes(
    State(state): State<KvState>,
    Auth(who): Auth,
    Path(project_id): Path<String>,
    Query(query): Query<ChangesQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let project = project(project_id)?;
    let after = resume_point(headers.get("last-event-id"), query.after.as_deref())?;
    let subscription = state.kv.changes(&who, &project, after).await?;
    Ok(stream_response(subscription, state.keepalive))
}
