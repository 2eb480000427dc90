//! Object handlers: streaming uploads and downloads, ranges, conditional
//! gets, signed URLs and anonymous reads of public buckets, listings,
//! copies and moves.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::auth::Principal;
use bunbase_core::storage::{
    Actor, ByteStream, Fetched, GetObject, ListQuery, ObjectInfo, ObjectPath, PutCondition,
    PutObject, RangeSpec, SignedGrant, SignedMethod, SignedParams,
};
use bunbase_core::{Error, ProjectId};
use futures_util::TryStreamExt;
use serde::Deserialize;

use super::{StorageState, http_date};
use crate::kit::{ApiError, ApiJson, ApiQuery, ApiResult, AuthState, Caller, bearer_token};

/// User metadata travels in headers with this prefix.
pub const META_PREFIX: &str = "x-bunbase-meta-";

#[derive(Deserialize)]
pub struct ObjectRoute {
    project: String,
    bucket: String,
    key: String,
}

#[derive(Deserialize)]
pub struct BucketRoute {
    bucket: String,
}

/// Who calls an object route: a signed URL (its query string), a bearer
/// credential, or nobody (public buckets).
enum Party {
    Principal(Principal),
    Signed(SignedGrant),
    Anonymous,
}

impl Party {
    fn actor(&self) -> Actor<'_> {
        match self {
            Party::Principal(p) => Actor::Principal(p),
            Party::Signed(g) => Actor::Signed(g),
            Party::Anonymous => Actor::Anonymous,
        }
    }
}

async fn party(
    state: &StorageState,
    parts: &axum::http::request::Parts,
    project: &ProjectId,
    at: &ObjectPath,
    method: SignedMethod,
) -> Result<Party, Error> {
    let query = parts.uri.query().unwrap_or("");
    if query.split('&').any(|p| p.starts_with("signature=")) {
        let params: SignedParams = serde_urlencoded::from_str(query)
            .map_err(|e| Error::PermissionDenied(format!("malformed signed URL: {e}")))?;
        let grant = state.verify_signed(project, &at.bucket, &at.key, method, &params)?;
        return Ok(Party::Signed(grant));
    }
    bearer_party(state, parts, project).await
}

/// The bearer credential's principal, or nobody.
async fn bearer_party(
    state: &StorageState,
    parts: &axum::http::request::Parts,
    project: &ProjectId,
) -> Result<Party, Error> {
    match bearer_token(parts)? {
        Some(token) => Ok(Party::Principal(
            state.verifier().verify(&token, project).await?,
        )),
        None => Ok(Party::Anonymous),
    }
}

fn located(route: ObjectRoute) -> Result<(ProjectId, ObjectPath), Error> {
    Ok((
        ProjectId::new(route.project)?,
        ObjectPath::new(&route.bucket, &route.key)?,
    ))
}

fn header_text(
    headers: &HeaderMap,
    name: impl axum::http::header::AsHeaderName,
) -> Result<Option<&str>, Error> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::invalid("a header is not ASCII text"))
        })
        .transpose()
}

/// The request body as the core's byte stream.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(
        body.into_data_stream()
            .map_err(|e| Error::invalid(format!("the upload was interrupted: {e}"))),
    )
}

/// `Content-Length`, required: without it a client could stream without
/// end, and quotas are checked before the bytes arrive.
pub fn content_length(headers: &HeaderMap) -> Result<u64, Error> {
    header_text(headers, header::CONTENT_LENGTH)?
        .ok_or_else(|| Error::invalid("Content-Length is required (chunked uploads are not taken): send the object's size"))?
        .trim()
        .parse::<u64>()
        .map_err(|_| Error::invalid("Content-Length is not a number"))
}

fn metadata(headers: &HeaderMap) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        if let Some(field) = name.as_str().strip_prefix(META_PREFIX) {
            let value = value
                .to_str()
                .map_err(|_| Error::invalid(format!("metadata {field} is not ASCII text")))?;
            out.insert(field.to_string(), value.to_string());
        }
    }
    Ok(out)
}

pub async fn put(
    State(state): State<StorageState>,
    Path(route): Path<ObjectRoute>,
    request: Request,
) -> ApiResult<Response> {
    let (project, at) = located(route)?;
    let (parts, body) = request.into_parts();
    let party = party(&state, &parts, &project, &at, SignedMethod::Put).await?;
    let headers = &parts.headers;
    let condition = match header_text(headers, header::IF_NONE_MATCH)? {
        Some("*") => PutCondition::IfAbsent,
        Some(_) => return Err(Error::invalid("on a put, If-None-Match takes only *").into()),
        None => PutCondition::Any,
    };
    let put = PutObject {
        content_type: header_text(headers, header::CONTENT_TYPE)?.map(str::to_string),
        length: Some(content_length(headers)?),
        metadata: metadata(headers)?,
        condition,
    };
    let info = state
        .put_object(party.actor(), &project, &at, put, body_stream(body))
        .await?;
    Ok((StatusCode::OK, axum::Json(info)).into_response())
}

/// The headers that describe an object.
fn described(info: &ObjectInfo, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::ETAG, &format!("\"{}\"", info.etag));
    set(
        header::LAST_MODIFIED,
        &http_date::format(info.last_modified),
    );
    set(header::ACCEPT_RANGES, "bytes");
    set(header::CONTENT_TYPE, &info.content_type);
    for (name, value) in &info.metadata {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(format!("{META_PREFIX}{name}").as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    response
}

pub async fn get(
    State(state): State<StorageState>,
    Path(route): Path<ObjectRoute>,
    request: Request,
) -> ApiResult<Response> {
    let (project, at) = located(route)?;
    let (parts, _) = request.into_parts();
    let party = party(&state, &parts, &project, &at, SignedMethod::Get).await?;
    if parts.method == Method::HEAD {
        let info = state.head_object(party.actor(), &project, &at).await?;
        let mut response = described(&info, StatusCode::OK.into_response());
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
        return Ok(response);
    }
    let headers = &parts.headers;
    let get = GetObject {
        range: header_text(headers, header::RANGE)?
            .map(RangeSpec::parse)
            .transpose()?
            .flatten(),
        if_none_match: header_text(headers, header::IF_NONE_MATCH)?.map(str::to_string),
        if_modified_since: header_text(headers, header::IF_MODIFIED_SINCE)?
            .and_then(http_date::parse),
    };
    let fetched = state.get_object(party.actor(), &project, &at, get).await;
    let (info, range, body) = match fetched {
        Ok(Fetched::NotModified(info)) => {
            let mut response = described(&info, StatusCode::NOT_MODIFIED.into_response());
            response.headers_mut().remove(header::CONTENT_TYPE);
            return Ok(response);
        }
        Ok(Fetched::Body { info, range, body }) => (info, range, body),
        Err(Error::RangeNotSatisfiable(message)) => {
            let mut response = ApiError(Error::RangeNotSatisfiable(message)).into_response();
            if let Ok(size) = state.head_object(party.actor(), &project, &at).await
                && let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", size.size))
            {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    };
    let (status, length) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, info.size),
    };
    let mut response = described(&info, (status, Body::from_stream(body)).into_response());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(r) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", r.start, r.end, info.size))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

pub async fn delete(
    State(state): State<StorageState>,
    Path(route): Path<ObjectRoute>,
    request: Request,
) -> ApiResult<Response> {
    let (project, at) = located(route)?;
    let (parts, _) = request.into_parts();
    let party = bearer_party(&state, &parts, &project).await?;
    state.delete_object(party.actor(), &project, &at).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    prefix: String,
    delimiter: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub struct ListRoute {
    project: String,
    bucket: String,
}

pub async fn list(
    State(state): State<StorageState>,
    Path(ListRoute { project, bucket }): Path<ListRoute>,
    ApiQuery(params): ApiQuery<ListParams>,
    request: Request,
) -> ApiResult<Response> {
    let (parts, _) = request.into_parts();
    let project = ProjectId::new(project)?;
    let party = bearer_party(&state, &parts, &project).await?;
    let query = ListQuery {
        prefix: params.prefix,
        delimiter: params.delimiter,
        cursor: params.cursor,
        limit: params.limit.unwrap_or(0),
    };
    let page = state
        .list_objects(party.actor(), &project, &bucket, &query)
        .await?;
    Ok(axum::Json(page).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// The source key in this bucket.
    from: String,
    /// The target key.
    to: String,
    /// The target bucket (default: this one).
    to_bucket: Option<String>,
}

async fn copy_or_move(
    state: StorageState,
    caller: Caller,
    bucket: String,
    req: CopyRequest,
    remove_source: bool,
) -> ApiResult<Response> {
    let from = ObjectPath::new(&bucket, &req.from)?;
    let to = ObjectPath::new(req.to_bucket.as_deref().unwrap_or(&bucket), &req.to)?;
    let info = state
        .copy_object(
            Actor::Principal(&caller.who),
            &caller.project,
            &from,
            &to,
            remove_source,
        )
        .await?;
    Ok(axum::Json(info).into_response())
}

pub async fn copy(
    State(state): State<StorageState>,
    caller: Caller,
    Path(BucketRoute { bucket }): Path<BucketRoute>,
    ApiJson(req): ApiJson<CopyRequest>,
) -> ApiResult<Response> {
    copy_or_move(state, caller, bucket, req, false).await
}

pub async fn rename(
    State(state): State<StorageState>,
    caller: Caller,
    Path(BucketRoute { bucket }): Path<BucketRoute>,
    ApiJson(req): ApiJson<CopyRequest>,
) -> ApiResult<Response> {
    copy_or_move(state, caller, bucket, req, true).await
}
