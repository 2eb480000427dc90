//! Objects: PutObject, GetObject, HeadObject, DeleteObject,
//! DeleteObjects, CopyObject.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::Error;
use bunbase_core::storage::{
    Actor, Fetched, GetObject, ObjectInfo, ObjectPath, PutCondition, PutObject, RangeSpec,
};

use super::body::explain;
use super::error::{Ctx, S3Error};
use super::xml::{self, Doc};
use super::{Req, quoted, set, sigv4, time};

fn object_error(e: Error) -> S3Error {
    S3Error::from_core(e, Ctx::Object)
}

/// `x-amz-meta-*` headers as metadata (names lowercase, as HTTP/2 and
/// hyper give them).
pub(crate) fn metadata(headers: &HeaderMap) -> Result<BTreeMap<String, String>, S3Error> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        if let Some(meta) = name.as_str().strip_prefix("x-amz-meta-") {
            let value = value.to_str().map_err(|_| {
                S3Error::invalid_argument(format!("metadata {meta} must be printable ASCII"))
            })?;
            out.entry(meta.to_string())
                .and_modify(|v: &mut String| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The headers describing an object.
fn describe(info: &ObjectInfo, h: &mut HeaderMap) {
    set(h, "etag", &quoted(&info.etag));
    set(h, "last-modified", &time::http_date(info.last_modified));
    set(h, "content-type", &info.content_type);
    set(h, "accept-ranges", "bytes");
    for (name, value) in &info.metadata {
        if let Ok(name) =
            axum::http::HeaderName::from_bytes(format!("x-amz-meta-{name}").as_bytes())
            && let Ok(value) = axum::http::HeaderValue::from_str(value)
        {
            h.insert(name, value);
        }
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
        tag == "*" || tag == etag
    })
}

/// What the conditional headers decide: go on, 304 or 412 (RFC 9110
/// §13.2.2 as S3 applies it).
enum Verdict {
    Proceed,
    NotModified,
    Failed,
}

fn preconditions(headers: &HeaderMap, info: &ObjectInfo, prefix: &str) -> Verdict {
    let h = |name: &str| {
        headers
            .get(format!("{prefix}{name}"))
            .and_then(|v| v.to_str().ok())
    };
    let modified_secs = info.last_modified / 1000;
    match h("if-match") {
        Some(list) => {
            if !etag_matches(list, &info.etag) {
                return Verdict::Failed;
            }
        }
        None => {
            if let Some(since) = h("if-unmodified-since").and_then(time::parse_http_date)
                && modified_secs > since
            {
                return Verdict::Failed;
            }
        }
    }
    match h("if-none-match") {
        Some(list) => {
            if etag_matches(list, &info.etag) {
                return Verdict::NotModified;
            }
        }
        None => {
            if let Some(since) = h("if-modified-since").and_then(time::parse_http_date)
                && modified_secs <= since
            {
                return Verdict::NotModified;
            }
        }
    }
    Verdict::Proceed
}

fn precondition_failed() -> S3Error {
    S3Error::new(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
}

fn not_modified(info: &ObjectInfo) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    set(r.headers_mut(), "etag", &quoted(&info.etag));
    set(
        r.headers_mut(),
        "last-modified",
        &time::http_date(info.last_modified),
    );
    r
}

/// `response-content-type` and friends of a (presigned) GET.
const OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

fn range_of(req: &Req) -> Option<RangeSpec> {
    // A malformed Range is ignored, as S3 does: the whole object.
    req.header("range")
        .and_then(|r| RangeSpec::parse(r).ok().flatten())
}

/// GetObject, or HeadObject when `head`.
pub async fn get(req: &mut Req, head: bool) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    if req.has("partNumber") {
        return Err(S3Error::not_implemented("GetObject by partNumber"));
    }
    let actor = Actor::Principal(&req.principal);
    let range = range_of(req);
    let (info, range, body) = if head {
        let info = req
            .storage
            .head_object(actor, &req.project, &at)
            .await
            .map_err(object_error)?;
        let range = range
            .map(|r| r.resolve(info.size))
            .transpose()
            .map_err(object_error)?;
        (info, range, Body::empty())
    } else {
        // The service answers If-None-Match / If-Modified-Since itself;
        // If-Match and If-Unmodified-Since are checked on what it found.
        let get = GetObject {
            range,
            if_none_match: req.header("if-none-match").map(str::to_string),
            if_modified_since: req
                .header("if-modified-since")
                .and_then(time::parse_http_date),
        };
        match req
            .storage
            .get_object(actor, &req.project, &at, get)
            .await
            .map_err(object_error)?
        {
            Fetched::NotModified(info) => {
                if let Verdict::Failed = preconditions(&req.headers, &info, "") {
                    return Err(precondition_failed());
                }
                return Ok(not_modified(&info));
            }
            Fetched::Body { info, range, body } => (info, range, Body::from_stream(body)),
        }
    };
    match preconditions(&req.headers, &info, "") {
        Verdict::Failed => return Err(precondition_failed()),
        Verdict::NotModified => return Ok(not_modified(&info)),
        Verdict::Proceed => {}
    }
    let mut r = Response::new(body);
    let h = r.headers_mut();
    describe(&info, h);
    match range {
        Some(range) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = r.headers_mut();
            set(h, "content-length", &range.len().to_string());
            set(
                h,
                "content-range",
                &format!("bytes {}-{}/{}", range.start, range.end, info.size),
            );
        }
        None => set(h, "content-length", &info.size.to_string()),
    }
    if !head {
        for (param, name) in OVERRIDES {
            if let Some(value) = req.q(param) {
                set(r.headers_mut(), name, value);
            }
        }
    }
    Ok(r)
}

pub async fn put(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    let condition = match req.header("if-none-match") {
        None => PutCondition::Any,
        Some("*") => PutCondition::IfAbsent,
        Some(_) => {
            return Err(S3Error::not_implemented(
                "If-None-Match other than * on PutObject",
            ));
        }
    };
    if req.headers.contains_key("if-match") {
        return Err(S3Error::not_implemented("If-Match on PutObject"));
    }
    let decoder = req.decoder()?;
    let put = PutObject {
        content_type: content_type(&req.headers),
        length: decoder.declared(),
        metadata: metadata(&req.headers)?,
        condition,
    };
    let (stream, failure) = decoder.into_stream();
    let info = req
        .storage
        .put_object(
            Actor::Principal(&req.principal),
            &req.project,
            &at,
            put,
            stream,
        )
        .await
        .map_err(|e| explain(e, &failure, Ctx::Object))?;
    let mut r = StatusCode::OK.into_response();
    set(r.headers_mut(), "etag", &quoted(&info.etag));
    Ok(r)
}

/// As S3: deleting a missing key succeeds.
pub async fn delete(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    match req
        .storage
        .delete_object(Actor::Principal(&req.principal), &req.project, &at)
        .await
    {
        Ok(()) => {}
        Err(Error::NotFound(m)) if !m.starts_with("bucket ") => {}
        Err(e) => return Err(object_error(e)),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DeleteObjects: up to 1000 keys; `Quiet` answers only the failures.
pub async fn delete_many(req: &mut Req) -> Result<Response, S3Error> {
    let body = req.decoder()?.read_all(8 << 20).await?;
    let doc = xml::parse(&body).map_err(|e| S3Error::malformed_xml(e.0))?;
    if doc.name != "Delete" {
        return Err(S3Error::malformed_xml("expected Delete"));
    }
    let quiet = doc.child("Quiet").is_some_and(|q| q.text.trim() == "true");
    let mut keys = Vec::new();
    for object in doc.all("Object") {
        let Some(key) = object.child("Key") else {
            return Err(S3Error::malformed_xml("an Object without a Key"));
        };
        keys.push(key.text.clone());
    }
    if keys.is_empty() || keys.len() > 1000 {
        return Err(S3Error::malformed_xml("Delete names 1 to 1000 objects"));
    }
    req.storage
        .bucket(&req.principal, &req.project, &req.bucket)
        .await
        .map_err(|e| S3Error::from_core(e, Ctx::Bucket))?;
    let mut out = Doc::new("DeleteResult");
    for key in keys {
        let result = match ObjectPath::new(&req.bucket, &key) {
            Ok(at) => match req
                .storage
                .delete_object(Actor::Principal(&req.principal), &req.project, &at)
                .await
            {
                Ok(()) => Ok(()),
                Err(Error::NotFound(m)) if !m.starts_with("bucket ") => Ok(()),
                Err(e) => Err(object_error(e)),
            },
            Err(e) => Err(object_error(e)),
        };
        match result {
            Ok(()) if quiet => {}
            Ok(()) => {
                out.open("Deleted").text("Key", &key).close("Deleted");
            }
            Err(e) => {
                out.open("Error")
                    .text("Key", &key)
                    .text("Code", e.code)
                    .text("Message", &e.message)
                    .close("Error");
            }
        }
    }
    Ok(super::xml(StatusCode::OK, out.finish("DeleteResult")))
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
pub(crate) fn copy_source(req: &Req) -> Result<ObjectPath, S3Error> {
    let raw = req.header("x-amz-copy-source").unwrap_or("");
    let (path, version) = raw.split_once('?').unwrap_or((raw, ""));
    if !version.is_empty() && !version.starts_with("versionId=null") {
        return Err(S3Error::not_implemented(
            "copying a version other than the current one",
        ));
    }
    let decoded = sigv4::percent_decode(path, false)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::invalid_argument("Invalid copy source encoding"))?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let Some((bucket, key)) = trimmed.split_once('/') else {
        return Err(S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        ));
    };
    ObjectPath::new(bucket, key).map_err(object_error)
}

/// CopyObject: the stored bytes are copied by the store; with
/// `x-amz-metadata-directive: REPLACE` they stream through with the new
/// content type and metadata.
pub async fn copy(req: &mut Req) -> Result<Response, S3Error> {
    let to = req.object_path()?;
    let from = copy_source(req)?;
    let replace = match req.header("x-amz-metadata-directive") {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("COPY") => false,
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => return Err(S3Error::invalid_argument("Unknown metadata directive.")),
    };
    if from == to && !replace {
        return Err(S3Error::bad_request(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    // The copy-source conditions, on the source as it is now.
    let conditional = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
    // The request's own body (normally empty) is read and checked.
    req.drain(64 * 1024).await?;
    let actor = Actor::Principal(&req.principal);
    let info = if replace {
        let fetched = req
            .storage
            .get_object(actor, &req.project, &from, GetObject::default())
            .await
            .map_err(object_error)?;
        let Fetched::Body { info, body, .. } = fetched else {
            return Err(S3Error::internal(
                "an unconditional get answered not-modified",
            ));
        };
        if conditional
            && !matches!(
                preconditions(&req.headers, &info, "x-amz-copy-source-"),
                Verdict::Proceed
            )
        {
            return Err(precondition_failed());
        }
        let put = PutObject {
            content_type: content_type(&req.headers),
            length: Some(info.size),
            metadata: metadata(&req.headers)?,
            condition: PutCondition::Any,
        };
        req.storage
            .put_object(actor, &req.project, &to, put, body)
            .await
            .map_err(object_error)?
    } else {
        if conditional {
            let source = req
                .storage
                .head_object(actor, &req.project, &from)
                .await
                .map_err(object_error)?;
            if !matches!(
                preconditions(&req.headers, &source, "x-amz-copy-source-"),
                Verdict::Proceed
            ) {
                return Err(precondition_failed());
            }
        }
        req.storage
            .copy_object(actor, &req.project, &from, &to, false)
            .await
            .map_err(object_error)?
    };
    let mut doc = Doc::new("CopyObjectResult");
    doc.text("LastModified", time::iso8601(info.last_modified))
        .text("ETag", quoted(&info.etag));
    Ok(super::xml(StatusCode::OK, doc.finish("CopyObjectResult")))
}
