//! Multipart uploads: CreateMultipartUpload, UploadPart (and
//! UploadPartCopy), CompleteMultipartUpload, AbortMultipartUpload,
//! ListParts, ListMultipartUploads.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bunbase_core::storage::{Actor, CompletedPart, Fetched, GetObject, PartIn, RangeSpec};

use super::body::explain;
use super::error::{Ctx, S3Error};
use super::objects::{content_type, copy_source, metadata};
use super::xml::{self, Doc};
use super::{Req, quoted, set, sigv4, time};

fn upload_error(e: bunbase_core::Error) -> S3Error {
    S3Error::from_core(e, Ctx::Upload)
}

fn upload_id(req: &Req) -> Result<String, S3Error> {
    match req.q("uploadId") {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(S3Error::invalid_argument("uploadId is required")),
    }
}

fn owner(doc: &mut Doc, req: &Req, name: &str) {
    doc.open(name)
        .text("ID", req.project.as_str())
        .text("DisplayName", req.project.as_str())
        .close(name);
}

fn number<T: std::str::FromStr>(req: &Req, name: &str, default: T) -> Result<T, S3Error> {
    match req.q(name) {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            S3Error::invalid_argument(format!("{name} must be a non-negative integer"))
        }),
    }
}

pub async fn create(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    req.drain(64 * 1024).await?;
    let upload = req
        .storage
        .create_upload(
            &req.principal,
            &req.project,
            &at,
            content_type(&req.headers),
            metadata(&req.headers)?,
        )
        .await
        .map_err(|e| S3Error::from_core(e, Ctx::Object))?;
    let mut doc = Doc::new("InitiateMultipartUploadResult");
    doc.text("Bucket", &req.bucket)
        .text("Key", &req.key)
        .text("UploadId", &upload.id);
    Ok(super::xml(
        StatusCode::OK,
        doc.finish("InitiateMultipartUploadResult"),
    ))
}

/// UploadPart, or UploadPartCopy with `x-amz-copy-source` (and
/// `x-amz-copy-source-range`).
pub async fn upload_part(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    let id = upload_id(req)?;
    let number: u32 = match req.q("partNumber").map(str::parse) {
        Some(Ok(n)) => n,
        _ => {
            return Err(S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
    };
    if req.headers.contains_key("x-amz-copy-source") {
        let from = copy_source(req)?;
        let range = match req.header("x-amz-copy-source-range") {
            None => None,
            Some(r) => Some(
                RangeSpec::parse(r)
                    .ok()
                    .flatten()
                    .filter(|r| matches!(r, RangeSpec::From { end: Some(_), .. }))
                    .ok_or_else(|| {
                        S3Error::invalid_argument(
                            "The x-amz-copy-source-range value must be of the form bytes=first-last",
                        )
                    })?,
            ),
        };
        req.drain(64 * 1024).await?;
        let fetched = req
            .storage
            .get_object(
                Actor::Principal(&req.principal),
                &req.project,
                &from,
                GetObject {
                    range,
                    ..GetObject::default()
                },
            )
            .await
            .map_err(|e| S3Error::from_core(e, Ctx::Object))?;
        let Fetched::Body { info, range, body } = fetched else {
            return Err(S3Error::internal(
                "an unconditional get answered not-modified",
            ));
        };
        let length = range.map_or(info.size, |r| r.len());
        let part = req
            .storage
            .upload_part(
                &req.principal,
                &req.project,
                &at,
                &id,
                PartIn {
                    number,
                    length: Some(length),
                },
                body,
            )
            .await
            .map_err(upload_error)?;
        let mut doc = Doc::new("CopyPartResult");
        doc.text("LastModified", time::iso8601(info.last_modified))
            .text("ETag", quoted(&part.etag));
        return Ok(super::xml(StatusCode::OK, doc.finish("CopyPartResult")));
    }
    let decoder = req.decoder()?;
    let length = decoder.declared();
    let (stream, failure) = decoder.into_stream();
    let part = req
        .storage
        .upload_part(
            &req.principal,
            &req.project,
            &at,
            &id,
            PartIn { number, length },
            stream,
        )
        .await
        .map_err(|e| explain(e, &failure, Ctx::Upload))?;
    let mut r = StatusCode::OK.into_response();
    set(r.headers_mut(), "etag", &quoted(&part.etag));
    Ok(r)
}

pub async fn complete(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    let id = upload_id(req)?;
    let body = req.decoder()?.read_all(8 << 20).await?;
    let doc = xml::parse(&body).map_err(|e| S3Error::malformed_xml(e.0))?;
    if doc.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml("expected CompleteMultipartUpload"));
    }
    let mut parts = Vec::new();
    for part in doc.all("Part") {
        let number = part
            .child("PartNumber")
            .and_then(|n| n.text.trim().parse::<u32>().ok())
            .ok_or_else(|| S3Error::malformed_xml("a Part without a PartNumber"))?;
        let etag = part
            .child("ETag")
            .map(|e| e.text.trim().to_string())
            .ok_or_else(|| S3Error::malformed_xml("a Part without an ETag"))?;
        parts.push(CompletedPart { number, etag });
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml(
            "a completion names at least one part",
        ));
    }
    let info = req
        .storage
        .complete_upload(&req.principal, &req.project, &at, &id, &parts)
        .await
        .map_err(|e| S3Error::from_core(e, Ctx::Complete))?;
    let host = req.header("host").unwrap_or("localhost");
    let mut doc = Doc::new("CompleteMultipartUploadResult");
    doc.text(
        "Location",
        format!(
            "http://{host}{}/{}/{}",
            super::PREFIX,
            req.bucket,
            sigv4::uri_encode(req.key.as_bytes(), true)
        ),
    )
    .text("Bucket", &req.bucket)
    .text("Key", &req.key)
    .text("ETag", quoted(&info.etag));
    Ok(super::xml(
        StatusCode::OK,
        doc.finish("CompleteMultipartUploadResult"),
    ))
}

pub async fn abort(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    let id = upload_id(req)?;
    req.storage
        .abort_upload(&req.principal, &req.project, &at, &id)
        .await
        .map_err(upload_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_parts(req: &mut Req) -> Result<Response, S3Error> {
    let at = req.object_path()?;
    let id = upload_id(req)?;
    let max: usize = number(req, "max-parts", 1000)?;
    let max = max.min(1000);
    let marker: u32 = number(req, "part-number-marker", 0)?;
    let mut parts = req
        .storage
        .parts(&req.principal, &req.project, &at, &id)
        .await
        .map_err(upload_error)?;
    parts.sort_by_key(|p| p.number);
    parts.retain(|p| p.number > marker);
    let truncated = parts.len() > max;
    parts.truncate(max);
    let now = time::iso8601(bunbase_core::id::now_millis());
    let mut doc = Doc::new("ListPartsResult");
    doc.text("Bucket", &req.bucket)
        .text("Key", &req.key)
        .text("UploadId", &id);
    owner(&mut doc, req, "Initiator");
    owner(&mut doc, req, "Owner");
    doc.text("StorageClass", "STANDARD")
        .text("PartNumberMarker", marker.to_string())
        .text(
            "NextPartNumberMarker",
            parts.last().map_or(marker, |p| p.number).to_string(),
        )
        .text("MaxParts", max.to_string())
        .text("IsTruncated", truncated.to_string());
    for p in &parts {
        doc.open("Part")
            .text("PartNumber", p.number.to_string())
            .text("LastModified", &now)
            .text("ETag", quoted(&p.etag))
            .text("Size", p.size.to_string())
            .close("Part");
    }
    Ok(super::xml(StatusCode::OK, doc.finish("ListPartsResult")))
}

pub async fn list_uploads(req: &mut Req) -> Result<Response, S3Error> {
    let prefix = req.q("prefix").unwrap_or("").to_string();
    let delimiter = req
        .q("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let key_marker = req.q("key-marker").unwrap_or("").to_string();
    let id_marker = req.q("upload-id-marker").unwrap_or("").to_string();
    let max: usize = number(req, "max-uploads", 1000)?;
    let max = max.min(1000);
    let url = req
        .q("encoding-type")
        .is_some_and(|t| t.eq_ignore_ascii_case("url"));
    let mut uploads = req
        .storage
        .uploads(&req.principal, &req.project, &req.bucket)
        .await
        .map_err(|e| S3Error::from_core(e, Ctx::Bucket))?;
    uploads.retain(|u| u.key.starts_with(&prefix));
    uploads.sort_by(|a, b| (&a.key, a.created_at, &a.id).cmp(&(&b.key, b.created_at, &b.id)));
    if !key_marker.is_empty() {
        let resume = if id_marker.is_empty() {
            None
        } else {
            uploads
                .iter()
                .position(|u| u.key == key_marker && u.id == id_marker)
        };
        match resume {
            Some(at) => {
                uploads.drain(..=at);
            }
            None => {
                // A folder marker skips what lies under it.
                let folder = delimiter
                    .as_deref()
                    .is_some_and(|d| key_marker.ends_with(d));
                uploads
                    .retain(|u| u.key > key_marker && !(folder && u.key.starts_with(&key_marker)));
            }
        }
    }
    // Entries: uploads, and folders at the delimiter (each once).
    let mut entries: Vec<Result<&bunbase_core::storage::Upload, String>> = Vec::new();
    for u in &uploads {
        if let Some(d) = &delimiter
            && let Some(at) = u.key[prefix.len()..].find(d.as_str())
        {
            let folder = u.key[..prefix.len() + at + d.len()].to_string();
            if !entries.iter().any(|e| e.as_ref().err() == Some(&folder)) {
                entries.push(Err(folder));
            }
            continue;
        }
        entries.push(Ok(u));
    }
    let truncated = entries.len() > max;
    entries.truncate(max);
    let enc = |s: &str| {
        if url {
            sigv4::uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    };
    let mut doc = Doc::new("ListMultipartUploadsResult");
    doc.text("Bucket", &req.bucket)
        .text("KeyMarker", enc(&key_marker))
        .text("UploadIdMarker", &id_marker)
        .text("Prefix", enc(&prefix));
    if let Some(d) = &delimiter {
        doc.text("Delimiter", enc(d));
    }
    if truncated {
        match entries.last() {
            Some(Ok(u)) => {
                doc.text("NextKeyMarker", enc(&u.key))
                    .text("NextUploadIdMarker", &u.id);
            }
            Some(Err(folder)) => {
                doc.text("NextKeyMarker", enc(folder));
            }
            None => {}
        }
    }
    if url {
        doc.text("EncodingType", "url");
    }
    doc.text("MaxUploads", max.to_string())
        .text("IsTruncated", truncated.to_string());
    for u in entries.iter().flatten() {
        doc.open("Upload")
            .text("Key", enc(&u.key))
            .text("UploadId", &u.id);
        owner(&mut doc, req, "Initiator");
        owner(&mut doc, req, "Owner");
        doc.text("StorageClass", "STANDARD")
            .text("Initiated", time::iso8601(u.created_at))
            .close("Upload");
    }
    for folder in entries.iter().filter_map(|e| e.as_ref().err()) {
        doc.open("CommonPrefixes")
            .text("Prefix", enc(folder))
            .close("CommonPrefixes");
    }
    Ok(super::xml(
        StatusCode::OK,
        doc.finish("ListMultipartUploadsResult"),
    ))
}
