use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::docs::{Page, WriteOp};
use bunbase_core::{Error, ErrorCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::DocsState;
use crate::kit::{ApiJson, ApiQuery, ApiResult, Caller, error_response};

#[derive(Deserialize)]
pub struct CollectionPath {
    pub collection: String,
}

#[derive(Deserialize)]
pub struct DocumentPath {
    collection: String,
    id: String,
}

fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// A document with its version as the entity tag (what `If-Match` takes).
fn document(status: StatusCode, doc: Value) -> Response {
    let tag = doc
        .get("_version")
        .and_then(Value::as_u64)
        .and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok());
    let mut response = (status, axum::Json(doc)).into_response();
    if let Some(tag) = tag {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

fn page(page: Page) -> Response {
    ok(json!(page))
}

// ---- collections ----

pub async fn create_collection(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let described = state.create_collection(&who, &project, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(described)).into_response())
}

pub async fn list_collections(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    let collections = state.list_collections(&who, &project).await?;
    Ok(ok(json!({ "collections": collections })))
}

pub async fn get_collection(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection: name }): Path<CollectionPath>,
) -> ApiResult<Response> {
    Ok(ok(state.get_collection(&who, &project, &name).await?))
}

pub async fn update_collection(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection: name }): Path<CollectionPath>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    Ok(ok(state
        .update_collection(&who, &project, &name, &body)
        .await?))
}

pub async fn delete_collection(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection: name }): Path<CollectionPath>,
) -> ApiResult<Response> {
    state.delete_collection(&who, &project, &name).await?;
    Ok(ok(json!({ "deleted": true })))
}

pub async fn usage(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
) -> ApiResult<Response> {
    Ok(axum::Json(state.usage(&who, &project).await?).into_response())
}

// ---- documents ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    if_version: Option<u64>,
}

/// The version a write expects: `If-Match: "<n>"` (the ETag GET gave)
/// and/or `?if_version=<n>`.
fn if_version(headers: &HeaderMap, params: &WriteParams) -> Result<Option<u64>, Error> {
    let from_header = headers
        .get(header::IF_MATCH)
        .map(|raw| {
            raw.to_str()
                .ok()
                .and_then(|t| t.trim().strip_prefix('"')?.strip_suffix('"'))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    Error::invalid("If-Match takes one document ETag, e.g. If-Match: \"3\"")
                })
        })
        .transpose()?;
    match (from_header, params.if_version) {
        (Some(a), Some(b)) if a != b => Err(Error::invalid(
            "?if_version= contradicts the If-Match header",
        )),
        (a, b) => Ok(a.or(b)),
    }
}

pub async fn get(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(DocumentPath { collection, id }): Path<DocumentPath>,
) -> ApiResult<Response> {
    let doc = state.get(&who, &project, &collection, &id).await?;
    Ok(document(StatusCode::OK, doc))
}

pub async fn create(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiJson(doc): ApiJson<Value>,
) -> ApiResult<Response> {
    let created = state.create(&who, &project, &collection, doc).await?;
    // Ids are A-Z a-z 0-9 - _ . (core checks), so they need no escaping.
    let location = created
        .get("_id")
        .and_then(Value::as_str)
        .map(|id| format!("/bundoc/v1/projects/{project}/collections/{collection}/documents/{id}"))
        .and_then(|l| HeaderValue::from_str(&l).ok());
    let mut response = document(StatusCode::CREATED, created);
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn replace(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(DocumentPath { collection, id }): Path<DocumentPath>,
    ApiQuery(params): ApiQuery<WriteParams>,
    headers: HeaderMap,
    ApiJson(doc): ApiJson<Value>,
) -> ApiResult<Response> {
    let expected = if_version(&headers, &params)?;
    let (doc, created) = state
        .replace(&who, &project, &collection, &id, doc, expected)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(document(status, doc))
}

/// The media types a merge patch may come as (no Content-Type is JSON too).
fn is_merge_patch(headers: &HeaderMap) -> bool {
    let Some(raw) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let essence = raw
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/merge-patch+json" | "application/json"
    )
}

pub async fn patch(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(DocumentPath { collection, id }): Path<DocumentPath>,
    ApiQuery(params): ApiQuery<WriteParams>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Response> {
    if !is_merge_patch(&headers) {
        return Ok(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidInput,
            "PATCH takes a JSON Merge Patch: Content-Type application/merge-patch+json or application/json",
        ));
    }
    let expected = if_version(&headers, &params)?;
    let doc = state
        .patch(&who, &project, &collection, &id, patch, expected)
        .await?;
    Ok(document(StatusCode::OK, doc))
}

pub async fn delete(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(DocumentPath { collection, id }): Path<DocumentPath>,
    ApiQuery(params): ApiQuery<WriteParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let expected = if_version(&headers, &params)?;
    state
        .delete(&who, &project, &collection, &id, expected)
        .await?;
    Ok(ok(json!({ "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    writes: Vec<WriteOp>,
}

pub async fn batch(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<Response> {
    let results = state
        .batch(&who, &project, &collection, body.writes)
        .await?;
    Ok(ok(json!({ "results": results })))
}

// ---- queries ----

/// A query given in the query string: `filter` is URL-encoded JSON,
/// `sort` and `fields` are comma-separated (`sort=-total,name`: `-` is
/// descending). Names containing commas need the POST query route.
pub(super) struct QueryString<'a> {
    pub filter: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub fields: Option<&'a str>,
    pub limit: Option<usize>,
    pub cursor: Option<&'a str>,
}

impl QueryString<'_> {
    /// The same query as a JSON body (what core parses and checks).
    pub fn body(&self) -> Result<Value, Error> {
        let mut body = Map::new();
        if let Some(raw) = self.filter {
            let filter: Value = serde_json::from_str(raw)
                .map_err(|e| Error::invalid(format!("filter is not valid JSON: {e}")))?;
            body.insert("filter".into(), filter);
        }
        if let Some(raw) = self.sort {
            let items: Vec<Value> = raw
                .split(',')
                .map(|item| match item.strip_prefix('-') {
                    Some(field) => json!({ field: "desc" }),
                    None => json!({ item: "asc" }),
                })
                .collect();
            body.insert("sort".into(), Value::Array(items));
        }
        if let Some(raw) = self.fields {
            body.insert("fields".into(), json!(raw.split(',').collect::<Vec<_>>()));
        }
        if let Some(limit) = self.limit {
            body.insert("limit".into(), json!(limit));
        }
        if let Some(cursor) = self.cursor {
            body.insert("cursor".into(), json!(cursor));
        }
        Ok(Value::Object(body))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    filter: Option<String>,
    sort: Option<String>,
    fields: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let body = QueryString {
        filter: params.filter.as_deref(),
        sort: params.sort.as_deref(),
        fields: params.fields.as_deref(),
        limit: params.limit,
        cursor: params.cursor.as_deref(),
    }
    .body()?;
    Ok(page(state.query(&who, &project, &collection, &body).await?))
}

pub async fn query(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    Ok(page(state.query(&who, &project, &collection, &body).await?))
}

pub async fn explain(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let stats = state.explain(&who, &project, &collection, &body).await?;
    Ok(axum::Json(stats).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    #[serde(default)]
    filter: Value,
}

pub async fn count(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiJson(body): ApiJson<CountBody>,
) -> ApiResult<Response> {
    let count = state
        .count(&who, &project, &collection, &body.filter)
        .await?;
    Ok(ok(json!({ "count": count })))
}
