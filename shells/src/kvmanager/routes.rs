use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::kv::{Condition, PutRequest};
use bunbase_core::{Error, ErrorCode};
use serde::Deserialize;
use serde_json::json;

use super::KvState;
use crate::kit::sse::{resume_point, sse_response};
use crate::kit::{ApiQuery, ApiResult, Bearer, Caller, body_error, error_response};

#[derive(Deserialize)]
pub struct KeyPath {
    key: String,
}

pub async fn get(
    State(state): State<KvState>,
    Caller { who, project }: Caller,
    Path(KeyPath { key }): Path<KeyPath>,
) -> ApiResult<Response> {
    let value = state
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
    let from_query = query
        .condition
        .as_deref()
        .map(Condition::parse)
        .transpose()?;
    match (from_header, from_query) {
        (Some(a), Some(b)) if a != b => Err(Error::invalid(
            "the ?if= condition contradicts the If-(None-)Match header",
        )),
        (a, b) => Ok(a.or(b).unwrap_or_default()),
    }
}

pub async fn put(
    State(state): State<KvState>,
    Caller { who, project }: Caller,
    Path(KeyPath { key }): Path<KeyPath>,
    ApiQuery(query): ApiQuery<PutQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let value = body.map_err(body_error)?;
    let request = PutRequest {
        ttl: parse_ttl(&query)?,
        condition: parse_condition(&query, &headers)?,
    };
    let written = state.put(&who, &project, &key, value, request).await?;
    if !written {
        return Ok(error_response(
            StatusCode::PRECONDITION_FAILED,
            ErrorCode::Conflict,
            &request.condition.refusal(&key),
        ));
    }
    Ok(axum::Json(json!({ "written": true })).into_response())
}

pub async fn delete(
    State(state): State<KvState>,
    Caller { who, project }: Caller,
    Path(KeyPath { key }): Path<KeyPath>,
) -> ApiResult<Response> {
    let deleted = state.delete(&who, &project, &key).await?;
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
    Caller { who, project }: Caller,
    Path(KeyPath { key }): Path<KeyPath>,
    body: Bytes,
) -> ApiResult<Response> {
    // No body increments by one.
    let by = if body.iter().all(u8::is_ascii_whitespace) {
        1
    } else {
        serde_json::from_slice::<IncrBody>(&body)
            .map_err(|e| Error::invalid(format!("invalid increment body: {e}")))?
            .by
    };
    let value = state.incr(&who, &project, &key, by).await?;
    Ok(axum::Json(json!({ "value": value })).into_response())
}

pub async fn ttl(
    State(state): State<KvState>,
    Caller { who, project }: Caller,
    Path(KeyPath { key }): Path<KeyPath>,
) -> ApiResult<Response> {
    let ttl = state.ttl(&who, &project, &key).await?;
    Ok(axum::Json(json!({ "ttl_ms": ttl.map(|t| t.as_millis() as u64) })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<KvState>,
    Caller { who, project }: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let page = state
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
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(axum::Json(state.usage(&who, &project).await?).into_response())
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    after: Option<String>,
}

pub async fn changes(
    State(state): State<KvState>,
    Caller { who, project }: Caller,
    credential: Bearer,
    ApiQuery(query): ApiQuery<ChangesQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = resume_point(headers.get("last-event-id"), query.after.as_deref())?;
    let subscription = state.changes(&who, &project, after).await?;
    let position = subscription.position();
    let frames = state.guard(subscription, credential, &project);
    Ok(sse_response(frames, Some(position), state.keepalive))
}
