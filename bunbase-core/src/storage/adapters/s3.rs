//! Blobs in an S3 server (MinIO in compose, SeaweedFS in tests, AWS…): blob
//! `<id>` is the object `blobs/<id>` of one bucket, addressed path style.
//!
//! The store is configured by one URL:
//!
//! ```text
//! s3://ACCESS_KEY:SECRET@host:port/bucket?region=us-east-1&secure=false
//! ```
//!
//! - `ACCESS_KEY:SECRET@` may be left out: the credentials then come from
//!   `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and
//!   `AWS_SESSION_TOKEN`, if set). Percent-encode `@ : / ? %` inside them
//!   (`%2F` for `/`).
//! - `region` (default `us-east-1`) is the region requests are signed for.
//! - `secure` (default `true`): `https`, or `http` when `false`.
//!
//! [`S3Blobs::connect`] creates the bucket if it is missing.
//!
//! Bytes in: a blob under 8 MiB is one `PUT`; a larger one is a multipart
//! upload of 8 MiB parts, one part in flight while the next is read (about
//! 24 MiB of memory per upload at most), aborted if the body fails, S3 fails
//! or the future is dropped. A part given to [`BlobStore::put_part`] is held
//! in memory while it is sent (S3 signs its hash), so callers bound part
//! sizes. Bytes out: streamed as the server sends them, a range as a `Range`
//! request. Multipart uploads are S3's own (handle: the upload id, receipt:
//! the part's ETag); copies are server-side `CopyObject` (S3 copies at most
//! 5 GiB that way).
//!
//! TLS (for `secure=true`) runs on aws-lc-rs: `connect` installs it as the
//! process's rustls provider unless one is installed already.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use s3::bucket::Bucket;
use s3::bucket_ops::BucketConfiguration;
use s3::command::{Command, Multipart};
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::region::Region;
use s3::request::tokio_backend::ReqwestRequest;
use s3::request::{DataStream, Request, ResponseData};
use s3::serde_types::{CompleteMultipartUploadData, Part};

use crate::error::Error;
use crate::storage::blob::{BlobStore, ByteRange, ByteStream, validate_blob_id};
use crate::storage::model::{MAX_PART_NUMBER, validate_bucket_name};

/// Parts of a streamed `put` (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's largest part.
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// How long a request without a body to move may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a read may wait for the server's next bytes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long server-side work (copying, assembling parts) may take.
const SERVER_WORK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const CONTENT_TYPE: &str = "application/octet-stream";

/// Blobs as objects of one S3 bucket.
pub struct S3Blobs {
    /// Requests with a deadline ([`CONTROL_TIMEOUT`]).
    control: Bucket,
    /// Requests that move bodies: no overall deadline (a read may stream
    /// for hours); each has its own, or an idle timeout.
    data: Bucket,
    /// `http(s)://host:port/bucket`, for messages.
    place: String,
}

impl fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Blobs")
            .field("place", &self.place)
            .finish()
    }
}

/// An `s3://` URL, read.
#[derive(Clone, PartialEq, Eq)]
struct Config {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    /// `http(s)://host:port`.
    endpoint: String,
    bucket: String,
    region: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("access_key", &self.access_key)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

const URL_FORM: &str = "s3://ACCESS_KEY:SECRET@host:port/bucket?region=us-east-1&secure=false";

fn bad_url(problem: impl fmt::Display) -> Error {
    // Never echo the URL: it may hold the secret.
    Error::invalid(format!("the S3 URL must look like {URL_FORM}: {problem}"))
}

impl Config {
    /// Reads `url`; `env` gives the environment's credentials when the URL
    /// has none.
    fn parse(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad_url("it does not start with s3://"))?;
        // Bucket, host and query hold no '@'; a secret might.
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, bucket) = place
            .split_once('/')
            .ok_or_else(|| bad_url("it names no bucket"))?;
        let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '\\') {
            return Err(bad_url("it names no valid host"));
        }
        validate_bucket_name(bucket).map_err(|e| bad_url(format!("bad bucket: {e}")))?;

        let (access_key, secret_key, session_token) = match userinfo {
            Some(userinfo) => {
                let (access, secret) = userinfo
                    .split_once(':')
                    .ok_or_else(|| bad_url("write the credentials as ACCESS_KEY:SECRET@"))?;
                (percent_decode(access)?, percent_decode(secret)?, None)
            }
            None => {
                let (Some(access), Some(secret)) =
                    (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
                else {
                    return Err(bad_url(
                        "it has no credentials, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set",
                    ));
                };
                let token = env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty());
                (access, secret, token)
            }
        };
        if access_key.is_empty() || secret_key.is_empty() {
            return Err(bad_url("the access key and the secret may not be empty"));
        }

        let mut region = "us-east-1".to_string();
        let mut secure = true;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "region" if !value.is_empty() => region = percent_decode(value)?,
                "secure" => {
                    secure = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad_url("secure is true or false")),
                    }
                }
                _ => {
                    return Err(bad_url(format!(
                        "unknown option {name:?} (the options are region and secure)"
                    )));
                }
            }
        }
        let scheme = if secure { "https" } else { "http" };
        Ok(Config {
            access_key,
            secret_key,
            session_token,
            endpoint: format!("{scheme}://{host}"),
            bucket: bucket.to_string(),
            region,
        })
    }
}

/// Decodes `%XX` escapes.
fn percent_decode(s: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad_url("a % is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_url("a %-escape is not UTF-8"))
}

/// The object of blob `id` (a validated id).
fn key(id: &str) -> String {
    format!("blobs/{id}")
}

/// The text of the first `<name>…</name>` in `xml`.
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// `e` and its sources (`error sending request: connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Upload ids go into URLs unescaped (rust-s3 does not escape them): only
/// URL-safe ones are taken.
fn validate_upload_id(handle: &str) -> Result<(), Error> {
    let safe = !handle.is_empty()
        && handle.len() <= 1024
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if safe {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "{handle:?} is not an S3 upload id this store can use"
        )))
    }
}

fn check_part_number(number: u32) -> Result<(), Error> {
    if (1..=MAX_PART_NUMBER).contains(&number) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "part numbers are 1 to {MAX_PART_NUMBER}"
        )))
    }
}

/// The deadline of a request sending `len` bytes (at 256 KiB/s at worst).
fn send_timeout(len: usize) -> Duration {
    CONTROL_TIMEOUT + Duration::from_secs((len / (256 * 1024)) as u64)
}

/// Makes rust-s3's reqwest, built without a crypto provider of its own,
/// find aws-lc-rs.
fn install_crypto_provider() {
    // An error only says that a provider is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl S3Blobs {
    /// Connects to the bucket of `url` (see the module's documentation for
    /// its form), creating the bucket if it does not exist.
    pub async fn connect(url: &str) -> Result<S3Blobs, Error> {
        let config = Config::parse(url, |name| std::env::var(name).ok())?;
        install_crypto_provider();
        let region = Region::Custom {
            region: config.region.clone(),
            endpoint: config.endpoint.clone(),
        };
        let credentials = Credentials::new(
            Some(&config.access_key),
            Some(&config.secret_key),
            None,
            config.session_token.as_deref(),
            None,
        )
        .map_err(|e| bad_url(format!("bad credentials: {e}")))?;
        let mut control = *Bucket::new(&config.bucket, region, credentials)
            .map_err(|e| Error::internal(format!("cannot set up the S3 client: {e}")))?;
        control.set_path_style();
        control.set_request_timeout(Some(CONTROL_TIMEOUT));
        let mut data = control.clone();
        data.set_request_timeout(None);
        let store = S3Blobs {
            control,
            data,
            place: format!("{}/{}", config.endpoint, config.bucket),
        };
        store.ensure_bucket().await?;
        Ok(store)
    }

    /// The multipart uploads in progress for blob `id` (their upload ids):
    /// what an abandoned upload would leave behind.
    pub async fn pending_uploads(&self, id: &str) -> Result<Vec<String>, Error> {
        validate_blob_id(id)?;
        let key = key(id);
        let doing = format!("listing the uploads of blob {id}");
        let command = Command::ListMultipartUploads {
            prefix: Some(&key),
            delimiter: None,
            key_marker: None,
            upload_id_marker: None,
            max_uploads: Some(1000),
        };
        let response = self.expect_ok(&self.control, "/", command, &doing).await?;
        let body = String::from_utf8_lossy(response.as_slice());
        let mut ids = Vec::new();
        let mut rest = body.as_ref();
        while let Some(upload) = xml_field(rest, "Upload") {
            if xml_field(upload, "Key") == Some(key.as_str())
                && let Some(id) = xml_field(upload, "UploadId")
            {
                ids.push(id.to_string());
            }
            let end = rest
                .find("</Upload>")
                .map_or(rest.len(), |i| i + "</Upload>".len());
            rest = &rest[end..];
        }
        Ok(ids)
    }

    /// Creates the bucket unless it exists.
    async fn ensure_bucket(&self) -> Result<(), Error> {
        let doing = "looking for the bucket";
        let response = self.send(&self.control, "/", probe(), doing).await?;
        match response.status_code() {
            200..=299 => return Ok(()),
            404 => {}
            status => return Err(self.answer_error(doing, status, response.as_slice())),
        }
        let mut config = BucketConfiguration::default();
        let region = self.control.region();
        if region.to_string() != "us-east-1" {
            config.set_region(region);
        }
        let doing = "creating the bucket";
        let response = self
            .send(&self.control, "", Command::CreateBucket { config }, doing)
            .await?;
        let body = String::from_utf8_lossy(response.as_slice());
        match response.status_code() {
            200..=299 => Ok(()),
            // Created meanwhile by another instance of ours.
            409 if xml_field(&body, "Code") == Some("BucketAlreadyOwnedByYou") => Ok(()),
            status => Err(self.answer_error(doing, status, response.as_slice())),
        }
    }

    /// Sends one request.
    async fn send(
        &self,
        bucket: &Bucket,
        path: &str,
        command: Command<'_>,
        doing: &str,
    ) -> Result<ResponseData, Error> {
        let request = ReqwestRequest::new(bucket, path, command)
            .await
            .map_err(|e| self.failure(doing, e))?;
        request
            .response_data(false)
            .await
            .map_err(|e| self.failure(doing, e))
    }

    /// Sends one request, which must succeed.
    async fn expect_ok(
        &self,
        bucket: &Bucket,
        path: &str,
        command: Command<'_>,
        doing: &str,
    ) -> Result<ResponseData, Error> {
        let response = self.send(bucket, path, command, doing).await?;
        if (200..300).contains(&response.status_code()) {
            Ok(response)
        } else {
            Err(self.answer_error(doing, response.status_code(), response.as_slice()))
        }
    }

    /// Sends one request of server-side work (copy, complete), which must
    /// succeed with an XML body of root `<root>` (S3 may answer 200 with an
    /// `<Error>` once it has started).
    async fn expect_result(
        &self,
        path: &str,
        command: Command<'_>,
        root: &str,
        doing: &str,
    ) -> Result<ResponseData, Error> {
        let response = deadline(
            SERVER_WORK_TIMEOUT,
            self.expect_ok(&self.data, path, command, doing),
            || self.stalled(doing),
        )
        .await?;
        let body = String::from_utf8_lossy(response.as_slice());
        if body.contains(&format!("<{root}")) {
            Ok(response)
        } else {
            Err(self.answer_error(doing, response.status_code(), response.as_slice()))
        }
    }

    /// The error a failed request stands for.
    fn failure(&self, doing: &str, e: S3Error) -> Error {
        match e {
            S3Error::Reqwest(e)
                if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() =>
            {
                Error::unavailable(format!(
                    "{doing}: the S3 server at {} did not answer: {}",
                    self.place,
                    chain(&e)
                ))
            }
            S3Error::HttpFailWithBody(status, body) => {
                self.answer_error(doing, status, body.as_bytes())
            }
            other => Error::internal(format!("{doing} in S3 {}: {}", self.place, chain(&other))),
        }
    }

    /// The error an S3 error answer stands for.
    fn answer_error(&self, doing: &str, status: u16, body: &[u8]) -> Error {
        let body = String::from_utf8_lossy(body);
        let code = xml_field(&body, "Code").unwrap_or("").trim();
        let message = xml_field(&body, "Message").unwrap_or("").trim();
        let said = match (code.is_empty(), message.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => format!("{code} (HTTP {status})"),
            (false, false) => format!("{code}: {message} (HTTP {status})"),
        };
        let detail = format!("{doing}: the S3 server at {} answered {said}", self.place);
        match (status, code) {
            (404, "NoSuchBucket") => Error::internal(format!("{detail}: the bucket is gone")),
            (404, _) => Error::NotFound(detail),
            (400, "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall") | (416, _) => {
                Error::InvalidInput(detail)
            }
            (401 | 403, _) => Error::internal(format!(
                "{detail}: check the access key and secret of the S3 URL"
            )),
            (503, _) => Error::Unavailable(detail),
            _ => Error::Internal(detail),
        }
    }

    fn stalled(&self, doing: &str) -> Error {
        Error::unavailable(format!(
            "{doing}: the S3 server at {} stopped answering",
            self.place
        ))
    }

    /// Stores `content` as the whole object `key`.
    async fn put_whole(&self, key: &str, content: &[u8], doing: &str) -> Result<(), Error> {
        let command = Command::PutObject {
            content,
            content_type: CONTENT_TYPE,
            custom_headers: None,
            multipart: None,
        };
        deadline(
            send_timeout(content.len()),
            self.expect_ok(&self.data, key, command, doing),
            || self.stalled(doing),
        )
        .await?;
        Ok(())
    }

    /// Starts a multipart upload of `key`; returns its id.
    async fn initiate(&self, key: &str, doing: &str) -> Result<String, Error> {
        let command = Command::InitiateMultipartUpload {
            content_type: CONTENT_TYPE,
        };
        let response = self.expect_ok(&self.control, key, command, doing).await?;
        let body = String::from_utf8_lossy(response.as_slice());
        let upload = xml_field(&body, "UploadId").ok_or_else(|| {
            Error::internal(format!(
                "{doing}: the S3 server at {} answered no upload id",
                self.place
            ))
        })?;
        validate_upload_id(upload)?;
        Ok(upload.to_string())
    }

    /// Sends part `number` of upload `upload` of `key`; returns its ETag.
    async fn send_part(
        &self,
        key: &str,
        upload: &str,
        number: u32,
        content: &[u8],
    ) -> Result<String, Error> {
        let doing = format!("storing part {number} of upload {upload}");
        let command = Command::PutObject {
            content,
            content_type: CONTENT_TYPE,
            custom_headers: None,
            multipart: Some(Multipart::new(number, upload)),
        };
        let response = deadline(
            send_timeout(content.len()),
            self.expect_ok(&self.data, key, command, &doing),
            || self.stalled(&doing),
        )
        .await?;
        response
            .headers()
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("etag"))
            .map(|(_, etag)| etag)
            .ok_or_else(|| {
                Error::internal(format!(
                    "{doing}: the S3 server at {} answered no ETag",
                    self.place
                ))
            })
    }

    /// Makes `key` the concatenation of `parts` of upload `upload`.
    async fn complete(
        &self,
        key: &str,
        upload: &str,
        parts: Vec<Part>,
        doing: &str,
    ) -> Result<(), Error> {
        let command = Command::CompleteMultipartUpload {
            upload_id: upload,
            data: CompleteMultipartUploadData { parts },
        };
        self.expect_result(key, command, "CompleteMultipartUploadResult", doing)
            .await?;
        Ok(())
    }

    /// Drops upload `upload` of `key`; a missing one is not an error.
    async fn abort(&self, key: &str, upload: &str, doing: &str) -> Result<(), Error> {
        let command = Command::AbortMultipartUpload { upload_id: upload };
        let response = self.send(&self.control, key, command, doing).await?;
        match response.status_code() {
            200..=299 | 404 => Ok(()),
            status => Err(self.answer_error(doing, status, response.as_slice())),
        }
    }

    /// The parts after the first of a streamed put, then the completion.
    async fn put_rest(
        &self,
        key: &str,
        upload: &str,
        first: Vec<u8>,
        body: &mut PartReader,
        doing: &str,
    ) -> Result<u64, Error> {
        let mut parts = Vec::new();
        let mut total = 0u64;
        let mut number = 1;
        let mut chunk = first;
        loop {
            total += chunk.len() as u64;
            // Send this part while reading the next.
            let (sent, next) = tokio::join!(
                self.send_part(key, upload, number, &chunk),
                body.next_part(PART_SIZE)
            );
            // The body's own error (too large, client gone) comes first.
            let next = next?;
            parts.push(Part {
                part_number: number,
                etag: sent?,
            });
            if next.is_empty() {
                break;
            }
            if number == MAX_PART_NUMBER {
                return Err(Error::PayloadTooLarge(format!(
                    "one upload stores at most {} bytes: use a multipart upload",
                    PART_SIZE as u64 * u64::from(MAX_PART_NUMBER)
                )));
            }
            number += 1;
            chunk = next;
        }
        self.complete(key, upload, parts, doing).await?;
        Ok(total)
    }
}

/// A cheap request on the bucket: the first key under `blobs/`.
fn probe() -> Command<'static> {
    Command::ListObjectsV2 {
        prefix: "blobs/".to_string(),
        delimiter: None,
        continuation_token: None,
        start_after: None,
        max_keys: Some(1),
    }
}

/// `work`, or `stalled()` once `limit` has passed.
async fn deadline<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, Error>>,
    stalled: impl FnOnce() -> Error,
) -> Result<T, Error> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(stalled()))
}

/// Cuts a body into parts.
struct PartReader {
    body: ByteStream,
    carry: Bytes,
    ended: bool,
}

impl PartReader {
    fn new(body: ByteStream) -> PartReader {
        PartReader {
            body,
            carry: Bytes::new(),
            ended: false,
        }
    }

    /// The next `size` bytes, fewer at the end, none after it.
    async fn next_part(&mut self, size: usize) -> Result<Vec<u8>, Error> {
        let mut part = Vec::new();
        while part.len() < size {
            if self.carry.is_empty() {
                if self.ended {
                    break;
                }
                match self.body.next().await {
                    Some(chunk) => self.carry = chunk?,
                    None => self.ended = true,
                }
                continue;
            }
            let take = (size - part.len()).min(self.carry.len());
            if part.is_empty() {
                part.reserve_exact(size.min(self.carry.len().max(64 * 1024)));
            }
            part.extend_from_slice(&self.carry.split_to(take));
        }
        Ok(part)
    }
}

/// Aborts a multipart upload when dropped armed (the `put` future was
/// dropped half way).
struct AbortOnDrop {
    bucket: Bucket,
    key: String,
    upload: Option<String>,
}

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.upload = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (bucket, key) = (self.bucket.clone(), std::mem::take(&mut self.key));
        runtime.spawn(async move {
            if let Err(e) = bucket.abort_upload(&key, &upload).await {
                tracing::warn!("cannot abort the abandoned S3 upload {upload} of {key}: {e}");
            }
        });
    }
}

/// Yields a GET's body: skips `skip` bytes (a server that ignored the
/// range), gives `left` bytes if known (and fails if fewer come), and fails
/// if the server goes quiet for [`IDLE_TIMEOUT`].
struct Reading {
    body: DataStream,
    skip: u64,
    left: Option<u64>,
    id: String,
    place: String,
}

impl Reading {
    async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            if self.left == Some(0) {
                return None;
            }
            let item = match tokio::time::timeout(IDLE_TIMEOUT, self.body.next()).await {
                Ok(item) => item,
                Err(_) => {
                    return Some(Err(Error::unavailable(format!(
                        "reading blob {}: the S3 server at {} stopped sending",
                        self.id, self.place
                    ))));
                }
            };
            let mut bytes = match item {
                Some(Ok(bytes)) => bytes,
                Some(Err(e)) => {
                    return Some(Err(Error::unavailable(format!(
                        "reading blob {}: the S3 server at {} broke off: {}",
                        self.id,
                        self.place,
                        chain(&e)
                    ))));
                }
                None => {
                    return match self.left {
                        Some(left) => Some(Err(Error::internal(format!(
                            "reading blob {}: the S3 server at {} sent {left} bytes too few",
                            self.id, self.place
                        )))),
                        None => None,
                    };
                }
            };
            if self.skip > 0 {
                let skipped = self.skip.min(bytes.len() as u64);
                bytes.advance(skipped as usize);
                self.skip -= skipped;
            }
            if let Some(left) = &mut self.left {
                bytes.truncate((*left).min(bytes.len() as u64) as usize);
                *left -= bytes.len() as u64;
            }
            if !bytes.is_empty() {
                return Some(Ok(bytes));
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    fn describe(&self) -> String {
        format!("s3 {}", self.place)
    }

    async fn check(&self) -> Result<(), Error> {
        self.expect_ok(&self.control, "/", probe(), "checking the bucket")
            .await
            .map(|_| ())
    }

    async fn put(&self, id: &str, body: ByteStream) -> Result<u64, Error> {
        validate_blob_id(id)?;
        let key = key(id);
        let doing = format!("storing blob {id}");
        let mut body = PartReader::new(body);
        let first = body.next_part(PART_SIZE).await?;
        if first.len() < PART_SIZE {
            self.put_whole(&key, &first, &doing).await?;
            return Ok(first.len() as u64);
        }
        let upload = self.initiate(&key, &doing).await?;
        let mut guard = AbortOnDrop {
            bucket: self.control.clone(),
            key: key.clone(),
            upload: Some(upload.clone()),
        };
        let stored = self.put_rest(&key, &upload, first, &mut body, &doing).await;
        if stored.is_err()
            && let Err(e) = self.abort(&key, &upload, &doing).await
        {
            tracing::warn!("cannot abort the failed S3 upload {upload} of {key}: {e}");
        }
        guard.disarm();
        stored
    }

    async fn get(&self, id: &str, range: Option<ByteRange>) -> Result<ByteStream, Error> {
        validate_blob_id(id)?;
        let key = key(id);
        let doing = format!("reading blob {id}");
        let command = match range {
            Some(r) if r.start > r.end => {
                return Err(Error::invalid(format!(
                    "bytes {}-{} are no range",
                    r.start, r.end
                )));
            }
            Some(r) => Command::GetObjectRange {
                start: r.start,
                end: Some(r.end),
            },
            None => Command::GetObject,
        };
        let response = deadline(
            CONTROL_TIMEOUT,
            async {
                let request = ReqwestRequest::new(&self.data, &key, command)
                    .await
                    .map_err(|e| self.failure(&doing, e))?;
                request
                    .response_data_to_stream()
                    .await
                    .map_err(|e| self.failure(&doing, e))
            },
            || self.stalled(&doing),
        )
        .await?;
        let status = response.status_code;
        if !(200..300).contains(&status) {
            // An error's body is a short XML document.
            let mut body = Vec::new();
            let mut stream = response.bytes;
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await
            {
                body.extend_from_slice(&chunk);
                if body.len() > 64 * 1024 {
                    break;
                }
            }
            let error = self.answer_error(&doing, status, &body);
            return Err(match error {
                Error::NotFound(_) => Error::NotFound(format!("blob {id} not found")),
                other => other,
            });
        }
        let reading = Reading {
            body: response.bytes,
            skip: match range {
                Some(r) if status == 200 => r.start,
                _ => 0,
            },
            left: range.map(|r| r.len()),
            id: id.to_string(),
            place: self.place.clone(),
        };
        let stream = futures_util::stream::unfold(Some(reading), |reading| async move {
            let mut reading = reading?;
            match reading.next().await? {
                Ok(bytes) => Some((Ok(bytes), Some(reading))),
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(Box::pin(stream))
    }

    async fn delete(&self, id: &str) -> Result<(), Error> {
        validate_blob_id(id)?;
        let doing = format!("deleting blob {id}");
        let response = self
            .send(&self.control, &key(id), Command::DeleteObject, &doing)
            .await?;
        match response.status_code() {
            200..=299 | 404 => Ok(()),
            status => Err(self.answer_error(&doing, status, response.as_slice())),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        validate_blob_id(from)?;
        validate_blob_id(to)?;
        let doing = format!("copying blob {from} to {to}");
        let missing = |e: Error| match e {
            Error::NotFound(_) => Error::NotFound(format!("blob {from} not found")),
            other => other,
        };
        if from == to {
            // S3 refuses to copy an object onto itself: it only has to exist.
            return self
                .expect_ok(&self.control, &key(from), Command::HeadObject, &doing)
                .await
                .map(|_| ())
                .map_err(missing);
        }
        let source = format!("{}/{}", self.control.name(), key(from));
        let command = Command::CopyObject { from: &source };
        self.expect_result(&key(to), command, "CopyObjectResult", &doing)
            .await
            .map_err(missing)?;
        Ok(())
    }

    async fn begin_parts(&self, id: &str) -> Result<String, Error> {
        validate_blob_id(id)?;
        self.initiate(&key(id), &format!("starting an upload of blob {id}"))
            .await
    }

    async fn put_part(
        &self,
        id: &str,
        handle: &str,
        number: u32,
        body: ByteStream,
    ) -> Result<String, Error> {
        validate_blob_id(id)?;
        validate_upload_id(handle)?;
        check_part_number(number)?;
        let mut body = PartReader::new(body);
        let content = body.next_part(MAX_PART_SIZE).await?;
        if !body.next_part(1).await?.is_empty() {
            return Err(Error::PayloadTooLarge(format!(
                "a part is at most {MAX_PART_SIZE} bytes"
            )));
        }
        self.send_part(&key(id), handle, number, &content).await
    }

    async fn complete_parts(
        &self,
        id: &str,
        handle: &str,
        parts: &[(u32, String)],
    ) -> Result<(), Error> {
        validate_blob_id(id)?;
        validate_upload_id(handle)?;
        let mut previous = 0;
        for (number, _) in parts {
            check_part_number(*number)?;
            if *number <= previous {
                return Err(Error::invalid("parts must be listed in ascending order"));
            }
            previous = *number;
        }
        let parts = parts
            .iter()
            .map(|(number, etag)| Part {
                part_number: *number,
                etag: etag.clone(),
            })
            .collect();
        let doing = format!("completing upload {handle} of blob {id}");
        self.complete(&key(id), handle, parts, &doing).await
    }

    async fn abort_parts(&self, id: &str, handle: &str) -> Result<(), Error> {
        validate_blob_id(id)?;
        validate_upload_id(handle)?;
        let doing = format!("aborting upload {handle} of blob {id}");
        self.abort(&key(id), handle, &doing).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn urls_with_credentials() {
        let c = Config::parse(
            "s3://AKIA:se%2Fcr+et@127.0.0.1:9000/my-bucket?region=eu-west-1&secure=false",
            no_env,
        )
        .unwrap();
        assert_eq!(c.access_key, "AKIA");
        assert_eq!(c.secret_key, "se/cr+et");
        assert_eq!(c.endpoint, "http://127.0.0.1:9000");
        assert_eq!(c.bucket, "my-bucket");
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.session_token, None);

        let c = Config::parse("s3://a:b/c@minio:9000/bucket/", no_env).unwrap();
        assert_eq!((c.access_key.as_str(), c.secret_key.as_str()), ("a", "b/c"));
        assert_eq!(c.endpoint, "https://minio:9000");
        assert_eq!(c.bucket, "bucket");
        assert_eq!(c.region, "us-east-1");
    }

    #[test]
    fn urls_without_credentials_use_the_environment() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("id".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
            "AWS_SESSION_TOKEN" => Some("token".to_string()),
            _ => None,
        };
        let c = Config::parse("s3://s3.amazonaws.com/bucket", env).unwrap();
        assert_eq!(c.access_key, "id");
        assert_eq!(c.secret_key, "secret");
        assert_eq!(c.session_token.as_deref(), Some("token"));
        assert_eq!(c.endpoint, "https://s3.amazonaws.com");
        assert!(Config::parse("s3://host/bucket", no_env).is_err());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_secret() {
        for url in [
            "http://a:b@host/bucket",
            "s3://a:b@host",
            "s3://a:b@host/",
            "s3://a:b@host/Bad_Bucket",
            "s3://a:b@/bucket",
            "s3://ab@host/bucket",
            "s3://:b@host/bucket",
            "s3://a:b@host/bucket?secure=maybe",
            "s3://a:b@host/bucket?regoin=x",
            "s3://a:b%zz@host/bucket",
        ] {
            let e = Config::parse(url, no_env).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{url}");
            assert!(e.to_string().contains("s3://ACCESS_KEY"), "{e}");
        }
        let e = Config::parse("s3://key:topsecret@host/Bad_Bucket", no_env).unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(
            !format!("{:?}", Config::parse("s3://k:topsecret@h/bucket", no_env))
                .contains("topsecret")
        );
    }

    #[test]
    fn upload_ids_must_be_url_safe() {
        validate_upload_id("VXBsb2FkIElE-_.~9").unwrap();
        for bad in ["", "a&b", "a b", "a/b", "a?b", "a%20"] {
            assert!(validate_upload_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_answers_are_read() {
        let xml =
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
        assert_eq!(xml_field(xml, "Code"), Some("NoSuchKey"));
        assert_eq!(xml_field(xml, "Message"), Some("gone"));
        assert_eq!(xml_field(xml, "Resource"), None);
    }
}
