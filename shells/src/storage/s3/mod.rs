//! The S3 API of storage, path-style under `/storage/s3`
//! (`/storage/s3/{bucket}/{key…}`), for the AWS CLI, boto3 and other S3
//! clients with `endpoint_url = http(s)://host/storage/s3`.
//!
//! Hand-written rather than on a crate: signatures cover the full path the
//! client sent (`/storage/s3` included), which the S3 server crates cannot
//! verify under a prefix; and the protocol subset here is small.
//!
//! Authentication is AWS Signature Version 4 (header or presigned URL)
//! with an S3 credential of a project ([`Storage::s3_secret`]): it acts
//! for that project with every right. Bodies stream through checks of the
//! signed SHA-256, `Content-MD5`, flexible checksums and aws-chunked
//! chunk signatures ([`body`]), so a body that fails one stores nothing.
//!
//! Operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation, GetBucketVersioning, ListObjects (v1 and v2),
//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects,
//! CopyObject, CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts,
//! ListMultipartUploads. Others answer `NotImplemented`.

pub mod body;
mod buckets;
pub mod error;
mod multipart;
mod objects;
pub mod sigv4;
pub mod time;
pub mod xml;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::storage::{ObjectPath, Storage};

use body::{Decoder, Plan};
use error::{Ctx, S3Error};
use sigv4::Payload;

/// Where the S3 API is served.
pub const PREFIX: &str = "/storage/s3";

/// The S3 API's routes: every path beginning with [`PREFIX`].
pub fn router(storage: Storage) -> Router {
    let state = Arc::new(storage);
    Router::new()
        .route(PREFIX, any(handle))
        .route(&format!("{PREFIX}/"), any(handle))
        .route(&format!("{PREFIX}/{{*rest}}"), any(handle))
        .with_state(state)
}

/// One authenticated request.
pub(crate) struct Req {
    pub storage: Arc<Storage>,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub bucket: String,
    pub key: String,
    pub principal: Principal,
    pub project: ProjectId,
    payload: Option<Payload>,
    body: Option<Body>,
}

impl Req {
    /// A query parameter's value (`""` for a bare name).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.q(name).is_some()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request body's reader (once).
    pub fn decoder(&mut self) -> Result<Decoder, S3Error> {
        let (Some(payload), Some(body)) = (self.payload.take(), self.body.take()) else {
            return Err(S3Error::internal("the request body was read twice"));
        };
        Ok(Decoder::new(body, Plan::new(&self.headers, payload)?))
    }

    /// Drains a body a request should not have (`CreateBucket`'s
    /// configuration), checking it all the same.
    pub async fn drain(&mut self, limit: usize) -> Result<Vec<u8>, S3Error> {
        self.decoder()?.read_all(limit).await
    }

    pub fn object_path(&self) -> Result<ObjectPath, S3Error> {
        ObjectPath::new(&self.bucket, &self.key).map_err(|e| S3Error::from_core(e, Ctx::Object))
    }
}

/// An XML answer.
pub(crate) fn xml(status: StatusCode, doc: String) -> Response {
    let mut r = (status, doc).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// `"etag"`, as S3 quotes it.
pub(crate) fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Sets a header, skipping values HTTP cannot carry.
pub(crate) fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn split_path(rest: &str) -> Result<(String, String), S3Error> {
    let invalid = || S3Error::bad_request("InvalidURI", "Couldn't parse the specified URI.");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let decode = |s: &str| {
        sigv4::percent_decode(s, false)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)
    };
    Ok((decode(bucket)?, decode(key)?))
}

async fn handle(State(storage): State<Arc<Storage>>, req: Request) -> Response {
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |o| o.0.clone());
    let head = req.method() == Method::HEAD;
    let raw_path = uri.path();
    let rest = raw_path.strip_prefix(PREFIX).unwrap_or(raw_path);
    let resource = sigv4::percent_decode(rest, false)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "/".to_string());
    match serve(storage, req, &uri).await {
        Ok(response) => response,
        Err(e) => e.response(&resource, head),
    }
}

async fn serve(
    storage: Arc<Storage>,
    req: Request,
    uri: &axum::http::Uri,
) -> Result<Response, S3Error> {
    let (parts, body) = req.into_parts();
    let query = sigv4::parse_query(uri.query().unwrap_or("")).ok_or_else(|| {
        S3Error::invalid_argument("the query string is not valid percent-encoded UTF-8")
    })?;
    let raw_path = uri.path();
    let authed = sigv4::authenticate(
        &storage,
        &sigv4::Incoming {
            method: parts.method.as_str(),
            raw_path,
            query: &query,
            headers: &parts.headers,
            authority: uri.authority().map(|a| a.as_str()),
        },
    )
    .await?;
    let rest = raw_path.strip_prefix(PREFIX).unwrap_or(raw_path);
    let (bucket, key) = split_path(rest)?;
    let principal = Principal {
        subject: authed.access_key_id,
        kind: PrincipalKind::SecretKey,
        project: authed.project.clone(),
        rights: Rights::ALL,
    };
    let mut req = Req {
        storage,
        method: parts.method,
        headers: parts.headers,
        query,
        bucket,
        key,
        principal,
        project: authed.project,
        payload: Some(authed.payload),
        body: Some(body),
    };
    dispatch(&mut req).await
}

/// Subresources of buckets and objects this server does not keep.
const UNSUPPORTED: &[&str] = &[
    "acl",
    "policy",
    "policyStatus",
    "cors",
    "lifecycle",
    "tagging",
    "encryption",
    "website",
    "logging",
    "notification",
    "replication",
    "object-lock",
    "ownershipControls",
    "publicAccessBlock",
    "accelerate",
    "requestPayment",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "versions",
    "retention",
    "legal-hold",
    "torrent",
    "attributes",
    "restore",
    "select",
];

async fn dispatch(req: &mut Req) -> Result<Response, S3Error> {
    if let Some((name, _)) = req
        .query
        .iter()
        .find(|(n, _)| UNSUPPORTED.contains(&n.as_str()))
    {
        return Err(S3Error::not_implemented(&format!("the {name} subresource")));
    }
    let method = req.method.clone();
    if req.bucket.is_empty() {
        return match method {
            Method::GET => buckets::list_buckets(req).await,
            _ => Err(method_not_allowed()),
        };
    }
    if req.key.is_empty() {
        return match method {
            Method::GET if req.has("location") => buckets::location(req).await,
            Method::GET if req.has("versioning") => buckets::versioning(req).await,
            Method::GET if req.has("uploads") => multipart::list_uploads(req).await,
            Method::GET => buckets::list_objects(req).await,
            Method::HEAD => buckets::head(req).await,
            Method::PUT if req.has("versioning") => {
                Err(S3Error::not_implemented("bucket versioning"))
            }
            Method::PUT => buckets::create(req).await,
            Method::DELETE => buckets::delete(req).await,
            Method::POST if req.has("delete") => objects::delete_many(req).await,
            _ => Err(method_not_allowed()),
        };
    }
    match method {
        Method::GET if req.has("uploadId") => multipart::list_parts(req).await,
        Method::GET => objects::get(req, false).await,
        Method::HEAD => objects::get(req, true).await,
        Method::PUT if req.has("uploadId") || req.has("partNumber") => {
            multipart::upload_part(req).await
        }
        Method::PUT if req.headers.contains_key("x-amz-copy-source") => objects::copy(req).await,
        Method::PUT => objects::put(req).await,
        Method::DELETE if req.has("uploadId") => multipart::abort(req).await,
        Method::DELETE => objects::delete(req).await,
        Method::POST if req.has("uploads") => multipart::create(req).await,
        Method::POST if req.has("uploadId") => multipart::complete(req).await,
        _ => Err(method_not_allowed()),
    }
}

fn method_not_allowed() -> S3Error {
    S3Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
    )
}
