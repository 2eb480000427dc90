//! Storage (`/storage`): buckets, streaming uploads and downloads, signed
//! URLs, multipart uploads, S3 credentials.

use std::collections::BTreeMap;

use bunbase_core::Error;
use bunbase_core::storage::encode_key;
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::header;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::transport::{Client, segment, transport};

/// A bucket and its settings.
pub use bunbase_core::storage::Bucket;
/// A settings change: fields left out stay.
pub use bunbase_core::storage::BucketPatch;
/// A bucket's settings (public, content types, size limit, rules).
pub use bunbase_core::storage::BucketSettings;
/// One page of a listing: objects, folders, the next cursor.
pub use bunbase_core::storage::ListPage as ObjectPage;
/// A new S3 credential: its secret is shown this once.
pub use bunbase_core::storage::NewS3Credential;
/// An object's description.
pub use bunbase_core::storage::ObjectInfo;
/// A received part of a multipart upload.
pub use bunbase_core::storage::Part as UploadedPart;
/// An S3 credential as listed.
pub use bunbase_core::storage::S3CredentialInfo;
/// A multipart upload in progress.
pub use bunbase_core::storage::Upload;
/// Stored bytes and objects.
pub use bunbase_core::storage::Usage as StorageUsage;
/// What to sign, and the signed URL.
pub use bunbase_core::storage::{SignRequest, SignedMethod, SignedUrl};

pub struct StorageClient {
    client: Client,
}

/// What an upload says besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Store only if no object is at the key (`If-None-Match: *`).
    pub if_absent: bool,
}

/// A download: the object's description and its bytes as they arrive.
pub struct Download {
    pub size: u64,
    pub etag: String,
    pub content_type: String,
    pub body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
}

impl Download {
    /// All of it in memory (small objects).
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let chunks: Vec<Bytes> = self.body.try_collect().await?;
        Ok(chunks.concat().into())
    }
}

#[derive(Deserialize)]
struct Buckets {
    buckets: Vec<Bucket>,
}

#[derive(Deserialize)]
struct Credentials {
    credentials: Vec<S3CredentialInfo>,
}

#[derive(Deserialize)]
struct UsageReport {
    usage: StorageUsage,
}

impl Client {
    /// Storage (`/storage`): buckets and objects.
    pub fn storage(&self) -> StorageClient {
        StorageClient {
            client: self.clone(),
        }
    }
}

impl StorageClient {
    fn url(&self, project: &str, rest: &str) -> String {
        self.client
            .url(&format!("/storage/v1/projects/{}/{rest}", segment(project)))
    }

    fn object_url(&self, project: &str, bucket: &str, key: &str) -> String {
        self.url(
            project,
            &format!("buckets/{}/objects/{}", segment(bucket), encode_key(key)),
        )
    }

    pub async fn create_bucket(
        &self,
        project: &str,
        name: &str,
        settings: &BucketSettings,
    ) -> Result<Bucket, Error> {
        let mut body = serde_json::to_value(settings)?;
        body["name"] = json!(name);
        let request = self
            .client
            .http
            .post(self.url(project, "buckets"))
            .json(&body);
        self.client.send_json(request).await
    }

    pub async fn buckets(&self, project: &str) -> Result<Vec<Bucket>, Error> {
        let request = self.client.http.get(self.url(project, "buckets"));
        Ok(self.client.send_json::<Buckets>(request).await?.buckets)
    }

    pub async fn bucket(&self, project: &str, name: &str) -> Result<Bucket, Error> {
        let request = self
            .client
            .http
            .get(self.url(project, &format!("buckets/{}", segment(name))));
        self.client.send_json(request).await
    }

    pub async fn update_bucket(
        &self,
        project: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Bucket, Error> {
        let request = self
            .client
            .http
            .patch(self.url(project, &format!("buckets/{}", segment(name))))
            .json(patch);
        self.client.send_json(request).await
    }

    /// Deletes an empty bucket; `force` deletes its objects first.
    pub async fn delete_bucket(&self, project: &str, name: &str, force: bool) -> Result<(), Error> {
        let request = self
            .client
            .http
            .delete(self.url(project, &format!("buckets/{}?force={force}", segment(name))));
        self.client.call(request).await.map(drop)
    }

    /// Uploads `length` bytes from `body`, streamed.
    pub async fn put_stream<S>(
        &self,
        project: &str,
        bucket: &str,
        key: &str,
        length: u64,
        body: S,
        options: &PutOptions,
    ) -> Result<ObjectInfo, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
    {
        let mut request = self
            .client
            .http
            .put(self.object_url(project, bucket, key))
            .header(header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(ct) = &options.content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        for (name, value) in &options.metadata {
            request = request.header(format!("x-bunbase-meta-{name}"), value);
        }
        if options.if_absent {
            request = request.header(header::IF_NONE_MATCH, "*");
        }
        self.client.send_json(request).await
    }

    /// Uploads `bytes`.
    pub async fn put(
        &self,
        project: &str,
        bucket: &str,
        key: &str,
        bytes: impl Into<Bytes>,
        options: &PutOptions,
    ) -> Result<ObjectInfo, Error> {
        let bytes: Bytes = bytes.into();
        let length = bytes.len() as u64;
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]);
        self.put_stream(project, bucket, key, length, body, options)
            .await
    }

    /// Downloads an object, or `range` (`bytes=0-99`, `bytes=-10`) of it.
    pub async fn get(
        &self,
        project: &str,
        bucket: &str,
        key: &str,
        range: Option<&str>,
    ) -> Result<Download, Error> {
        let mut request = self.client.http.get(self.object_url(project, bucket, key));
        if let Some(range) = range {
            request = request.header(header::RANGE, range);
        }
        let response = self.client.call(request).await?;
        let text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let etag = text(header::ETAG).trim_matches('"').to_string();
        let content_type = text(header::CONTENT_TYPE);
        let size = response.content_length().unwrap_or(0);
        Ok(Download {
            size,
            etag,
            content_type,
            body: Box::pin(response.bytes_stream().map_err(transport)),
        })
    }

    pub async fn delete(&self, project: &str, bucket: &str, key: &str) -> Result<(), Error> {
        let request = self
            .client
            .http
            .delete(self.object_url(project, bucket, key));
        self.client.call(request).await.map(drop)
    }

    /// A page of objects under `prefix`, with folders at `delimiter`.
    pub async fn list(
        &self,
        project: &str,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ObjectPage, Error> {
        let mut query = vec![("prefix", prefix.to_string())];
        if let Some(d) = delimiter {
            query.push(("delimiter", d.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        let query: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={}", segment(value)))
            .collect();
        let request = self.client.http.get(self.url(
            project,
            &format!("buckets/{}/objects?{}", segment(bucket), query.join("&")),
        ));
        self.client.send_json(request).await
    }

    /// Copies (`remove_source`: moves) `from` to `to` (in `to_bucket`, or
    /// the same bucket).
    pub async fn copy(
        &self,
        project: &str,
        bucket: &str,
        from: &str,
        to: &str,
        to_bucket: Option<&str>,
        remove_source: bool,
    ) -> Result<ObjectInfo, Error> {
        let action = if remove_source { "move" } else { "copy" };
        let mut body = json!({ "from": from, "to": to });
        if let Some(b) = to_bucket {
            body["to_bucket"] = json!(b);
        }
        let request = self
            .client
            .http
            .post(self.url(project, &format!("buckets/{}/{action}", segment(bucket))))
            .json(&body);
        self.client.send_json(request).await
    }

    /// A URL that lets anyone GET or PUT one key until it expires; the
    /// answer's `url` is joined to the server's base URL here.
    pub async fn sign(
        &self,
        project: &str,
        bucket: &str,
        request: &Value,
    ) -> Result<SignedUrl, Error> {
        let call = self
            .client
            .http
            .post(self.url(project, &format!("buckets/{}/sign", segment(bucket))))
            .json(request);
        let mut signed: SignedUrl = self.client.send_json(call).await?;
        signed.url = self.client.url(&signed.url);
        Ok(signed)
    }

    pub async fn usage(&self, project: &str) -> Result<StorageUsage, Error> {
        let request = self.client.http.get(self.url(project, "usage"));
        Ok(self.client.send_json::<UsageReport>(request).await?.usage)
    }

    /// Starts a multipart upload.
    pub async fn create_upload(
        &self,
        project: &str,
        bucket: &str,
        key: &str,
        content_type: Option<&str>,
    ) -> Result<Upload, Error> {
        let request = self
            .client
            .http
            .post(self.url(project, &format!("buckets/{}/uploads", segment(bucket))))
            .json(&json!({ "key": key, "content_type": content_type }));
        self.client.send_json(request).await
    }

    /// Uploads part `number` (every part but the last: at least 5 MiB).
    pub async fn upload_part(
        &self,
        project: &str,
        bucket: &str,
        upload: &str,
        number: u32,
        bytes: impl Into<Bytes>,
    ) -> Result<UploadedPart, Error> {
        let request = self
            .client
            .http
            .put(self.url(
                project,
                &format!(
                    "buckets/{}/uploads/{}/parts/{number}",
                    segment(bucket),
                    segment(upload)
                ),
            ))
            .body(bytes.into());
        self.client.send_json(request).await
    }

    /// Assembles the object from `parts` (number and ETag, ascending).
    pub async fn complete_upload(
        &self,
        project: &str,
        bucket: &str,
        upload: &str,
        parts: &[UploadedPart],
    ) -> Result<ObjectInfo, Error> {
        let parts: Vec<Value> = parts
            .iter()
            .map(|p| json!({ "number": p.number, "etag": p.etag }))
            .collect();
        let request = self
            .client
            .http
            .post(self.url(
                project,
                &format!(
                    "buckets/{}/uploads/{}/complete",
                    segment(bucket),
                    segment(upload)
                ),
            ))
            .json(&json!({ "parts": parts }));
        self.client.send_json(request).await
    }

    pub async fn abort_upload(
        &self,
        project: &str,
        bucket: &str,
        upload: &str,
    ) -> Result<(), Error> {
        let request = self.client.http.delete(self.url(
            project,
            &format!("buckets/{}/uploads/{}", segment(bucket), segment(upload)),
        ));
        self.client.call(request).await.map(drop)
    }

    fn credentials_url(&self, project: &str, rest: &str) -> String {
        self.client.url(&format!(
            "/api/v1/projects/{}/storage/credentials{rest}",
            segment(project)
        ))
    }

    /// Issues an S3 credential for the project (admins).
    pub async fn create_s3_credential(&self, project: &str) -> Result<NewS3Credential, Error> {
        let request = self.client.http.post(self.credentials_url(project, ""));
        self.client.send_json(request).await
    }

    pub async fn s3_credentials(&self, project: &str) -> Result<Vec<S3CredentialInfo>, Error> {
        let request = self.client.http.get(self.credentials_url(project, ""));
        Ok(self
            .client
            .send_json::<Credentials>(request)
            .await?
            .credentials)
    }

    pub async fn revoke_s3_credential(
        &self,
        project: &str,
        access_key_id: &str,
    ) -> Result<(), Error> {
        let request = self
            .client
            .http
            .delete(self.credentials_url(project, &format!("/{}", segment(access_key_id))));
        self.client.call(request).await.map(drop)
    }
}
