//! Buckets: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation, GetBucketVersioning, and the object listings
//! (ListObjects v1 and v2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use bunbase_core::storage::{Actor, BucketSettings, ListQuery, ObjectInfo};

use super::error::{Ctx, S3Error};
use super::xml::{self, Doc};
use super::{Req, quoted, sigv4, time};

/// Most keys a listing returns (as S3).
const MAX_KEYS: usize = 1000;

fn bucket_error(e: bunbase_core::Error) -> S3Error {
    S3Error::from_core(e, Ctx::Bucket)
}

pub async fn list_buckets(req: &mut Req) -> Result<Response, S3Error> {
    let buckets = req
        .storage
        .buckets(&req.principal, &req.project)
        .await
        .map_err(bucket_error)?;
    let mut doc = Doc::new("ListAllMyBucketsResult");
    doc.open("Owner")
        .text("ID", req.project.as_str())
        .text("DisplayName", req.project.as_str())
        .close("Owner")
        .open("Buckets");
    for b in &buckets {
        doc.open("Bucket")
            .text("Name", &b.name)
            .text("CreationDate", time::iso8601(b.created_at))
            .close("Bucket");
    }
    doc.close("Buckets");
    Ok(super::xml(
        StatusCode::OK,
        doc.finish("ListAllMyBucketsResult"),
    ))
}

pub async fn create(req: &mut Req) -> Result<Response, S3Error> {
    // A CreateBucketConfiguration (a region) may come: regions are one
    // here, so it is read (and checked) but not kept.
    let body = req.drain(64 * 1024).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let doc = xml::parse(&body).map_err(|e| S3Error::malformed_xml(e.0))?;
        if doc.name != "CreateBucketConfiguration" {
            return Err(S3Error::malformed_xml("expected CreateBucketConfiguration"));
        }
    }
    req.storage
        .create_bucket(
            &req.principal,
            &req.project,
            &req.bucket,
            BucketSettings::default(),
        )
        .await
        .map_err(|e| S3Error::from_core(e, Ctx::CreateBucket))?;
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/{}", req.bucket)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

pub async fn head(req: &mut Req) -> Result<Response, S3Error> {
    req.storage
        .bucket(&req.principal, &req.project, &req.bucket)
        .await
        .map_err(bucket_error)?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert("x-amz-bucket-region", HeaderValue::from_static("us-east-1"));
    Ok(r)
}

pub async fn delete(req: &mut Req) -> Result<Response, S3Error> {
    req.storage
        .delete_bucket(&req.principal, &req.project, &req.bucket, false)
        .await
        .map_err(|e| S3Error::from_core(e, Ctx::DeleteBucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Empty: us-east-1, as S3 answers for it.
pub async fn location(req: &mut Req) -> Result<Response, S3Error> {
    req.storage
        .bucket(&req.principal, &req.project, &req.bucket)
        .await
        .map_err(bucket_error)?;
    Ok(super::xml(
        StatusCode::OK,
        Doc::new("LocationConstraint").finish("LocationConstraint"),
    ))
}

/// Never enabled: objects have one version.
pub async fn versioning(req: &mut Req) -> Result<Response, S3Error> {
    req.storage
        .bucket(&req.principal, &req.project, &req.bucket)
        .await
        .map_err(bucket_error)?;
    Ok(super::xml(
        StatusCode::OK,
        Doc::new("VersioningConfiguration").finish("VersioningConfiguration"),
    ))
}

/// An entry of a listing page: an object or a folder.
enum Entry {
    Object(ObjectInfo),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Object(o) => &o.key,
            Entry::Prefix(p) => p,
        }
    }
}

/// ListObjects (v1) and ListObjectsV2 (`list-type=2`).
pub async fn list_objects(req: &mut Req) -> Result<Response, S3Error> {
    let v2 = match req.q("list-type") {
        None => false,
        Some("2") => true,
        Some(_) => return Err(S3Error::invalid_argument("list-type must be 2")),
    };
    let url = match req.q("encoding-type") {
        None | Some("") => false,
        Some(t) if t.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
            ));
        }
    };
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let delimiter = req
        .q("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max_keys = match req.q("max-keys") {
        None => MAX_KEYS,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| {
                S3Error::invalid_argument(
                    "Provided max-keys not an integer or within integer range",
                )
            })?
            .min(MAX_KEYS),
    };
    let token = req.q("continuation-token").map(str::to_string);
    let start_after = req.q("start-after").map(str::to_string);
    let marker = req.q("marker").map(str::to_string);
    let cursor = if v2 {
        match &token {
            Some(t) => {
                let raw = B64URL
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                Some(raw.ok_or_else(|| {
                    S3Error::invalid_argument("The continuation token provided is incorrect")
                })?)
            }
            None => start_after.clone().filter(|s| !s.is_empty()),
        }
    } else {
        marker.clone().filter(|m| !m.is_empty())
    };

    let mut entries = Vec::new();
    let mut next = None;
    if max_keys == 0 {
        req.storage
            .bucket(&req.principal, &req.project, &req.bucket)
            .await
            .map_err(bucket_error)?;
    } else {
        // One entry more than asked shows whether more follow.
        let limit = (max_keys + 1).min(req.storage.limits().max_list.max(1));
        let page = req
            .storage
            .list_objects(
                Actor::Principal(&req.principal),
                &req.project,
                &req.bucket,
                &ListQuery {
                    prefix: prefix.clone(),
                    delimiter: delimiter.clone(),
                    cursor,
                    limit,
                },
            )
            .await
            .map_err(bucket_error)?;
        // Objects and folders come apart, each in key order: merge them.
        let mut objects = page.objects.into_iter().peekable();
        let mut prefixes = page.prefixes.into_iter().peekable();
        loop {
            let take_object = match (objects.peek(), prefixes.peek()) {
                (Some(o), Some(p)) => o.key < *p,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            entries.push(match take_object {
                true => Entry::Object(objects.next().expect("peeked")),
                false => Entry::Prefix(prefixes.next().expect("peeked")),
            });
        }
        if entries.len() > max_keys {
            entries.truncate(max_keys);
            next = entries.last().map(|e| e.name().to_string());
        } else {
            next = page.next;
        }
    }

    let enc = |s: &str| {
        if url {
            sigv4::uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    };
    let mut doc = Doc::new("ListBucketResult");
    doc.text("Name", &req.bucket).text("Prefix", enc(&prefix));
    if v2 {
        if let Some(t) = &token {
            doc.text("ContinuationToken", t);
        }
        if let Some(s) = &start_after {
            doc.text("StartAfter", enc(s));
        }
        doc.text("KeyCount", entries.len().to_string());
    } else {
        doc.text("Marker", enc(marker.as_deref().unwrap_or("")));
    }
    doc.text("MaxKeys", max_keys.to_string());
    if let Some(d) = &delimiter {
        doc.text("Delimiter", enc(d));
    }
    if url {
        doc.text("EncodingType", "url");
    }
    doc.text("IsTruncated", if next.is_some() { "true" } else { "false" });
    if let Some(n) = &next {
        if v2 {
            doc.text("NextContinuationToken", B64URL.encode(n.as_bytes()));
        } else {
            doc.text("NextMarker", enc(n));
        }
    }
    for entry in &entries {
        if let Entry::Object(o) = entry {
            doc.open("Contents")
                .text("Key", enc(&o.key))
                .text("LastModified", time::iso8601(o.last_modified))
                .text("ETag", quoted(&o.etag))
                .text("Size", o.size.to_string())
                .text("StorageClass", "STANDARD");
            if !v2 {
                doc.open("Owner")
                    .text("ID", req.project.as_str())
                    .text("DisplayName", req.project.as_str())
                    .close("Owner");
            }
            doc.close("Contents");
        }
    }
    for entry in &entries {
        if let Entry::Prefix(p) = entry {
            doc.open("CommonPrefixes")
                .text("Prefix", enc(p))
                .close("CommonPrefixes");
        }
    }
    Ok(super::xml(StatusCode::OK, doc.finish("ListBucketResult")))
}
