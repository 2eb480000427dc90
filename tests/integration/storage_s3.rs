//! Storage's S3 API (`/storage/s3`) over real HTTP: signatures, presigned
//! URLs, bodies that fail their checks (nothing stored), multipart
//! completion errors, project isolation; then boto3
//! (`tests/python/s3_boto3.py`) and the AWS CLI against the same server.
//! CI installs python3, boto3 and the AWS CLI (`pip install boto3
//! awscli`); without them those tests fail and say so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
use bunbase_core::storage::{Storage, StorageLimits, StorageMetrics, StorageSecret};
use bunbase_shells::storage::s3::body::Algo;
use bunbase_shells::storage::s3::sigv4::{
    self, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, ToSign,
    UNSIGNED_PAYLOAD, sha256_hex,
};
use bunbase_shells::storage::s3::{router, time};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Credential {
    akid: String,
    secret: String,
}

struct Server {
    /// `127.0.0.1:port`
    host: String,
    blobs: Arc<MemoryBlobs>,
    storage: Storage,
    cred: Credential,
}

fn admin(project: &ProjectId) -> Principal {
    Principal {
        subject: "admin".into(),
        kind: PrincipalKind::Account,
        project: project.clone(),
        rights: Rights::ALL,
    }
}

async fn credential(storage: &Storage, project: &str) -> Credential {
    let project = ProjectId::new(project).unwrap();
    let made = storage
        .create_s3_credential(&admin(&project), &project)
        .await
        .unwrap();
    Credential {
        akid: made.access_key_id,
        secret: made.secret_access_key,
    }
}

async fn start() -> Server {
    let blobs = Arc::new(MemoryBlobs::new());
    let storage = Storage::new(
        Arc::new(MemoryMeta::new()),
        blobs.clone(),
        StorageLimits::default(),
        StorageMetrics::unregistered(),
        StorageSecret::new(&[7; 32]),
    );
    let cred = credential(&storage, "s3-project").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let app = router(storage.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        host,
        blobs,
        storage,
        cred,
    }
}

/// A response's status and body text.
struct Answer {
    status: u16,
    body: String,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn code(&self) -> String {
        self.body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.to_string())
            .unwrap_or_default()
    }

    fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "answer: {}",
            self.body
        );
        assert!(self.body.contains("<RequestId>"), "{}", self.body);
    }
}

/// A signed request, as SDKs make them.
struct Call<'a> {
    server: &'a Server,
    cred: &'a Credential,
    method: &'a str,
    path: String,
    query: &'a str,
    headers: Vec<(String, String)>,
    payload_hash: String,
    at: u64,
}

impl<'a> Call<'a> {
    fn new(server: &'a Server, method: &'a str, path: &str) -> Call<'a> {
        Call {
            server,
            cred: &server.cred,
            method,
            path: format!("/storage/s3{path}"),
            query: "",
            headers: Vec::new(),
            payload_hash: sigv4::EMPTY_SHA256.into(),
            at: time::now_secs(),
        }
    }

    fn to_sign<'b>(&'b self, headers: &'b [(&'b str, &'b str)]) -> ToSign<'b> {
        ToSign {
            method: self.method,
            path: &self.path,
            query: self.query,
            headers,
            access_key_id: &self.cred.akid,
            secret: &self.cred.secret,
            region: "us-east-1",
            at: self.at,
        }
    }

    /// The headers to send, `authorization` included, and the signature.
    fn signed_headers(&self) -> (Vec<(String, String)>, String) {
        let mut headers = self.headers.clone();
        headers.push(("host".into(), self.server.host.clone()));
        headers.push(("x-amz-date".into(), time::format_amz(self.at)));
        headers.push(("x-amz-content-sha256".into(), self.payload_hash.clone()));
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let (authorization, signature) = self.to_sign(&refs).authorization(&self.payload_hash);
        headers.push(("authorization".into(), authorization));
        (headers, signature)
    }

    fn url(&self) -> String {
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!("http://{}{}{query}", self.server.host, self.path)
    }

    async fn send(self, body: Vec<u8>) -> Answer {
        let (headers, _) = self.signed_headers();
        send(self.method, &self.url(), &headers, body).await
    }
}

async fn send(method: &str, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
    let mut request = reqwest::Client::new().request(method.parse().unwrap(), url);
    for (n, v) in headers {
        if n != "host" {
            request = request.header(n, v);
        }
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    Answer {
        status,
        body,
        headers,
    }
}

async fn put(server: &Server, path: &str, body: &[u8]) -> Answer {
    let mut call = Call::new(server, "PUT", path);
    call.payload_hash = sha256_hex(body);
    call.send(body.to_vec()).await
}

async fn get(server: &Server, path: &str) -> Answer {
    Call::new(server, "GET", path).send(Vec::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_dates_and_keys_are_checked() {
    let server = start().await;
    assert_eq!(put(&server, "/sig-bucket", b"").await.status, 200);
    let ok = get(&server, "/").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("<Name>sig-bucket</Name>"), "{}", ok.body);

    let wrong = Credential {
        akid: server.cred.akid.clone(),
        secret: format!("x{}", &server.cred.secret[1..]),
    };
    let mut call = Call::new(&server, "GET", "/");
    call.cred = &wrong;
    call.send(Vec::new())
        .await
        .expect_error(403, "SignatureDoesNotMatch");

    let unknown = Credential {
        akid: "BBNOSUCHKEY000000".into(),
        secret: server.cred.secret.clone(),
    };
    let mut call = Call::new(&server, "GET", "/");
    call.cred = &unknown;
    call.send(Vec::new())
        .await
        .expect_error(403, "InvalidAccessKeyId");

    for skew in [-(20 * 60), 20 * 60_i64] {
        let mut call = Call::new(&server, "GET", "/");
        call.at = time::now_secs().saturating_add_signed(skew);
        call.send(Vec::new())
            .await
            .expect_error(403, "RequestTimeTooSkewed");
    }

    // The signature covers the full path: the same request elsewhere fails.
    let call = Call::new(&server, "GET", "/sig-bucket");
    let (headers, _) = call.signed_headers();
    let url = format!("http://{}/storage/s3/sig-bucket?list-type=2", server.host);
    send("GET", &url, &headers, Vec::new())
        .await
        .expect_error(403, "SignatureDoesNotMatch");
    // A signed header changed after signing.
    let mut call = Call::new(&server, "GET", "/sig-bucket");
    call.headers.push(("x-amz-meta-a".into(), "1".into()));
    let (mut headers, _) = call.signed_headers();
    for (n, v) in &mut headers {
        if n == "x-amz-meta-a" {
            *v = "2".into();
        }
    }
    send("GET", &call.url(), &headers, Vec::new())
        .await
        .expect_error(403, "SignatureDoesNotMatch");

    let anonymous = reqwest::get(format!("http://{}/storage/s3/sig-bucket", server.host))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);
    assert!(
        anonymous
            .text()
            .await
            .unwrap()
            .contains("<Code>AccessDenied</Code>")
    );

    let mut v2 = Call::new(&server, "GET", "/");
    v2.headers
        .push(("authorization".into(), "AWS AKID:c2ln".into()));
    let answer = send("GET", &v2.url(), &v2.headers, Vec::new()).await;
    answer.expect_error(400, "InvalidRequest");
}

fn presign(server: &Server, method: &str, path: &str, at: u64, expires: u64) -> String {
    let host = server.host.clone();
    let headers = [("host", host.as_str())];
    let path = format!("/storage/s3{path}");
    let sign = ToSign {
        method,
        path: &path,
        query: "",
        headers: &headers,
        access_key_id: &server.cred.akid,
        secret: &server.cred.secret,
        region: "us-east-1",
        at,
    };
    format!("http://{host}{path}?{}", sign.presigned_query(expires))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_expire_and_cannot_be_altered() {
    let server = start().await;
    assert_eq!(put(&server, "/pre-bucket", b"").await.status, 200);
    assert_eq!(
        put(&server, "/pre-bucket/doc.txt", b"presigned")
            .await
            .status,
        200
    );
    assert_eq!(
        put(&server, "/pre-bucket/other.txt", b"other").await.status,
        200
    );
    let now = time::now_secs();

    let url = presign(&server, "GET", "/pre-bucket/doc.txt", now, 300);
    let answer = send("GET", &url, &[], Vec::new()).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "presigned"));

    let put_url = presign(&server, "PUT", "/pre-bucket/up.txt", now, 300);
    let answer = send("PUT", &put_url, &[], b"uploaded".to_vec()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(get(&server, "/pre-bucket/up.txt").await.body, "uploaded");
    // A GET URL does not PUT.
    send("PUT", &url, &[], b"x".to_vec())
        .await
        .expect_error(403, "SignatureDoesNotMatch");

    let expired = presign(&server, "GET", "/pre-bucket/doc.txt", now - 600, 60);
    let answer = send("GET", &expired, &[], Vec::new()).await;
    answer.expect_error(403, "AccessDenied");
    assert!(
        answer.body.contains("Request has expired"),
        "{}",
        answer.body
    );

    let altered = url.replace("doc.txt", "other.txt");
    send("GET", &altered, &[], Vec::new())
        .await
        .expect_error(403, "SignatureDoesNotMatch");
    let longer = url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_ne!(longer, url);
    send("GET", &longer, &[], Vec::new())
        .await
        .expect_error(403, "SignatureDoesNotMatch");
    let added = format!("{url}&response-content-type=text%2Fhtml");
    send("GET", &added, &[], Vec::new())
        .await
        .expect_error(403, "SignatureDoesNotMatch");

    let week = presign(
        &server,
        "GET",
        "/pre-bucket/doc.txt",
        now,
        7 * 24 * 3600 + 1,
    );
    send("GET", &week, &[], Vec::new())
        .await
        .expect_error(400, "AuthorizationQueryParametersError");
}

/// An aws-chunked body: `data` in chunks of `size`, signed when `signer`,
/// with `trailer` lines after the last chunk.
fn chunked(
    data: &[u8],
    size: usize,
    mut signer: Option<&mut sigv4::ChunkSigner>,
    trailer: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunks: Vec<&[u8]> = data.chunks(size).collect();
    chunks.push(b"");
    for chunk in chunks {
        match signer.as_deref_mut() {
            Some(s) => out.extend_from_slice(
                format!(
                    "{:x};chunk-signature={}\r\n",
                    chunk.len(),
                    s.sign_chunk(chunk)
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes()),
        }
        if !chunk.is_empty() {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some((name, value)) = trailer {
        out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        if let Some(s) = signer {
            let signature = s.sign_trailer(&format!("{name}:{value}\n"));
            out.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn checksum(algo: Algo, data: &[u8]) -> String {
    let mut h = algo.hasher();
    h.update(data);
    h.finish()
}

/// A chunked PUT of `data` (the body built by `body` from the request's
/// seed signature).
async fn put_chunked(
    server: &Server,
    path: &str,
    mode: &str,
    decoded_length: usize,
    extra: &[(&str, &str)],
    body: impl FnOnce(Option<sigv4::ChunkSigner>) -> Vec<u8>,
) -> Answer {
    let mut call = Call::new(server, "PUT", path);
    call.payload_hash = mode.to_string();
    call.headers
        .push(("content-encoding".into(), "aws-chunked".into()));
    call.headers.push((
        "x-amz-decoded-content-length".into(),
        decoded_length.to_string(),
    ));
    for (n, v) in extra {
        call.headers.push((n.to_string(), v.to_string()));
    }
    let (headers, seed) = call.signed_headers();
    let refs: Vec<(&str, &str)> = Vec::new();
    let signer =
        (mode != STREAMING_UNSIGNED_TRAILER).then(|| call.to_sign(&refs).chunk_signer(&seed));
    send("PUT", &call.url(), &headers, body(signer)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_fail_their_checks_store_nothing() {
    let server = start().await;
    assert_eq!(put(&server, "/body-bucket", b"").await.status, 200);
    assert_eq!(
        put(&server, "/body-bucket/kept", b"version one")
            .await
            .status,
        200
    );
    let blobs = server.blobs.len();
    let unchanged = |server: &Server| {
        assert_eq!(server.blobs.len(), blobs, "a failed upload left a blob");
    };

    // The signed SHA-256 is not the body's.
    let mut call = Call::new(&server, "PUT", "/body-bucket/kept");
    call.payload_hash = sha256_hex(b"something else");
    call.send(b"version two".to_vec())
        .await
        .expect_error(400, "XAmzContentSHA256Mismatch");
    assert_eq!(get(&server, "/body-bucket/kept").await.body, "version one");
    unchanged(&server);

    // More bytes than Content-Length: the server reads Content-Length
    // bytes, which do not hash to what was signed.
    let body = b"0123456789";
    let mut call = Call::new(&server, "PUT", "/body-bucket/longer");
    call.payload_hash = sha256_hex(body);
    let (headers, _) = call.signed_headers();
    let mut raw = format!("PUT {} HTTP/1.1\r\n", call.path);
    for (n, v) in &headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("content-length: 5\r\nconnection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(&server.host).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("XAmzContentSHA256Mismatch"), "{answer}");
    get(&server, "/body-bucket/longer")
        .await
        .expect_error(404, "NoSuchKey");
    unchanged(&server);

    // A wrong Content-MD5.
    let mut call = Call::new(&server, "PUT", "/body-bucket/md5");
    call.payload_hash = UNSIGNED_PAYLOAD.into();
    call.headers
        .push(("content-md5".into(), "AAAAAAAAAAAAAAAAAAAAAA==".into()));
    call.send(b"abc".to_vec())
        .await
        .expect_error(400, "BadDigest");
    unchanged(&server);

    // A wrong x-amz-checksum-crc32 header.
    let mut call = Call::new(&server, "PUT", "/body-bucket/crc");
    call.payload_hash = UNSIGNED_PAYLOAD.into();
    call.headers
        .push(("x-amz-checksum-crc32".into(), checksum(Algo::Crc32, b"abd")));
    call.send(b"abc".to_vec())
        .await
        .expect_error(400, "BadDigest");
    unchanged(&server);

    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    // Signed chunks: without their signatures, right, then one altered.
    let answer = put_chunked(
        &server,
        "/body-bucket/signed",
        STREAMING_SIGNED,
        data.len(),
        &[],
        |_| chunked(&data, 65536, None, None),
    )
    .await;
    answer.expect_error(403, "SignatureDoesNotMatch");
    unchanged(&server);
    let answer = put_chunked(
        &server,
        "/body-bucket/signed",
        STREAMING_SIGNED,
        data.len(),
        &[],
        |s| {
            let mut s = s.unwrap();
            chunked(&data, 65536, Some(&mut s), None)
        },
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let stored = Call::new(&server, "GET", "/body-bucket/signed");
    let response = reqwest::Client::new()
        .get(stored.url())
        .headers(reqwest_headers(&stored.signed_headers().0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().as_ref(), &data[..]);
    let blobs_now = server.blobs.len();
    let answer = put_chunked(
        &server,
        "/body-bucket/tampered",
        STREAMING_SIGNED,
        data.len(),
        &[],
        |s| {
            let mut s = s.unwrap();
            let mut body = chunked(&data, 65536, Some(&mut s), None);
            // Flip a byte of the second chunk's data.
            let at = body.len() / 2;
            body[at] ^= 1;
            body
        },
    )
    .await;
    answer.expect_error(403, "SignatureDoesNotMatch");
    get(&server, "/body-bucket/tampered")
        .await
        .expect_error(404, "NoSuchKey");
    assert_eq!(server.blobs.len(), blobs_now);

    // More content than x-amz-decoded-content-length.
    let answer = put_chunked(
        &server,
        "/body-bucket/lying",
        STREAMING_SIGNED,
        1000,
        &[],
        |s| {
            let mut s = s.unwrap();
            chunked(&data, 65536, Some(&mut s), None)
        },
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    get(&server, "/body-bucket/lying")
        .await
        .expect_error(404, "NoSuchKey");
    assert_eq!(server.blobs.len(), blobs_now);

    // Signed chunks with a signed trailing checksum.
    let crc = checksum(Algo::Crc32c, &data);
    let trailer = [("x-amz-trailer", "x-amz-checksum-crc32c")];
    let answer = put_chunked(
        &server,
        "/body-bucket/signed-trailer",
        STREAMING_SIGNED_TRAILER,
        data.len(),
        &trailer,
        |s| {
            let mut s = s.unwrap();
            chunked(
                &data,
                65536,
                Some(&mut s),
                Some(("x-amz-checksum-crc32c", &crc)),
            )
        },
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let blobs_now = server.blobs.len();
    // The trailer's signature covers the checksum.
    let answer = put_chunked(
        &server,
        "/body-bucket/bad-trailer",
        STREAMING_SIGNED_TRAILER,
        data.len(),
        &trailer,
        |s| {
            let mut s = s.unwrap();
            let body = chunked(
                &data,
                65536,
                Some(&mut s),
                Some(("x-amz-checksum-crc32c", &crc)),
            );
            let forged = checksum(Algo::Crc32c, b"forged");
            let at = body
                .windows(crc.len())
                .rposition(|w| w == crc.as_bytes())
                .unwrap();
            [&body[..at], forged.as_bytes(), &body[at + crc.len()..]].concat()
        },
    )
    .await;
    answer.expect_error(403, "SignatureDoesNotMatch");
    assert_eq!(server.blobs.len(), blobs_now);

    // Unsigned chunks with a trailing checksum (boto3's default over
    // HTTPS): right, then wrong.
    for algo in [
        Algo::Crc32,
        Algo::Crc32c,
        Algo::Crc64Nvme,
        Algo::Sha1,
        Algo::Sha256,
    ] {
        let value = checksum(algo, &data);
        let answer = put_chunked(
            &server,
            "/body-bucket/unsigned-trailer",
            STREAMING_UNSIGNED_TRAILER,
            data.len(),
            &[("x-amz-trailer", algo.header())],
            |_| chunked(&data, 8192, None, Some((algo.header(), &value))),
        )
        .await;
        assert_eq!(answer.status, 200, "{algo:?}: {}", answer.body);
    }
    let blobs_now = server.blobs.len();
    let wrong = checksum(Algo::Crc32, b"not the data");
    let answer = put_chunked(
        &server,
        "/body-bucket/unsigned-wrong",
        STREAMING_UNSIGNED_TRAILER,
        data.len(),
        &[("x-amz-trailer", "x-amz-checksum-crc32")],
        |_| chunked(&data, 8192, None, Some(("x-amz-checksum-crc32", &wrong))),
    )
    .await;
    answer.expect_error(400, "BadDigest");
    get(&server, "/body-bucket/unsigned-wrong")
        .await
        .expect_error(404, "NoSuchKey");
    assert_eq!(server.blobs.len(), blobs_now);
}

fn reqwest_headers(headers: &[(String, String)]) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (n, v) in headers {
        if n != "host" {
            map.insert(
                reqwest::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_completion_refuses_missing_parts() {
    let server = start().await;
    assert_eq!(put(&server, "/mp-bucket", b"").await.status, 200);
    let mut call = Call::new(&server, "POST", "/mp-bucket/obj");
    call.query = "uploads";
    let created = call.send(Vec::new()).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created
        .body
        .split_once("<UploadId>")
        .and_then(|(_, r)| r.split_once("</UploadId>"))
        .map(|(id, _)| id.to_string())
        .unwrap();
    let query = format!("partNumber=1&uploadId={id}");
    let mut call = Call::new(&server, "PUT", "/mp-bucket/obj");
    call.query = &query;
    call.payload_hash = sha256_hex(b"part one");
    let part = call.send(b"part one".to_vec()).await;
    assert_eq!(part.status, 200, "{}", part.body);
    let etag = part.headers["etag"].to_str().unwrap().to_string();

    let complete = |parts: String| {
        let query = format!("uploadId={id}");
        let server = &server;
        async move {
            let body = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
            let mut call = Call::new(server, "POST", "/mp-bucket/obj");
            call.query = &query;
            call.payload_hash = sha256_hex(body.as_bytes());
            call.send(body.into_bytes()).await
        }
    };
    let part_xml = |n: u32, etag: &str| {
        format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            etag.replace('"', "&quot;")
        )
    };
    complete(part_xml(2, &etag))
        .await
        .expect_error(400, "InvalidPart");
    complete(part_xml(1, "\"00000000000000000000000000000000\""))
        .await
        .expect_error(400, "InvalidPart");
    complete(String::new())
        .await
        .expect_error(400, "MalformedXML");
    complete("<Part><PartNumber>1</PartNumber>".into())
        .await
        .expect_error(400, "MalformedXML");
    let done = complete(part_xml(1, &etag)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("<ETag>&quot;"), "{}", done.body);
    assert_eq!(get(&server, "/mp-bucket/obj").await.body, "part one");
    complete(part_xml(1, &etag))
        .await
        .expect_error(404, "NoSuchUpload");

    let unknown = "uploadId=ffffffffffffffffffffffffffffffff";
    let mut call = Call::new(&server, "DELETE", "/mp-bucket/obj");
    call.query = unknown;
    call.send(Vec::new())
        .await
        .expect_error(404, "NoSuchUpload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_sees_only_its_project() {
    let server = start().await;
    assert_eq!(put(&server, "/private-bucket", b"").await.status, 200);
    assert_eq!(
        put(&server, "/private-bucket/secret.txt", b"mine")
            .await
            .status,
        200
    );
    let other = credential(&server.storage, "other-project").await;

    let mut call = Call::new(&server, "GET", "/");
    call.cred = &other;
    let listed = call.send(Vec::new()).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(!listed.body.contains("private-bucket"), "{}", listed.body);
    assert!(
        listed.body.contains("<ID>other-project</ID>"),
        "{}",
        listed.body
    );

    for (method, path) in [
        ("GET", "/private-bucket/secret.txt"),
        ("GET", "/private-bucket?list-type=2"),
        ("DELETE", "/private-bucket/secret.txt"),
        ("DELETE", "/private-bucket"),
    ] {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut call = Call::new(&server, method, path);
        call.cred = &other;
        call.query = query;
        call.send(Vec::new())
            .await
            .expect_error(404, "NoSuchBucket");
    }
    let mut call = Call::new(&server, "HEAD", "/private-bucket");
    call.cred = &other;
    assert_eq!(call.send(Vec::new()).await.status, 404);

    // Bucket names are the project's own: the other may have one too.
    let mut call = Call::new(&server, "PUT", "/private-bucket");
    call.cred = &other;
    assert_eq!(call.send(Vec::new()).await.status, 200);
    let mut call = Call::new(&server, "GET", "/private-bucket");
    call.cred = &other;
    call.query = "list-type=2";
    let listed = call.send(Vec::new()).await;
    assert!(
        listed.body.contains("<KeyCount>0</KeyCount>"),
        "{}",
        listed.body
    );
    assert_eq!(
        get(&server, "/private-bucket/secret.txt").await.body,
        "mine"
    );
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command to its end off the runtime's threads.
async fn run(mut command: Command, what: &'static str) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("cannot run {what} ({e}): install python3, then `pip install boto3 awscli`")
        })
}

fn check(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_suite() {
    let server = start().await;
    let script = repo_root().join("tests/python/s3_boto3.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .env("S3_ENDPOINT", format!("http://{}/storage/s3", server.host))
        .env("S3_ACCESS_KEY", &server.cred.akid)
        .env("S3_SECRET_KEY", &server.cred.secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let output = run(command, "python3").await;
    if output.status.code() == Some(3) {
        panic!(
            "boto3 is not installed: `pip install boto3 awscli` (CI does)\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    check(&output, "tests/python/s3_boto3.py");
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_copies_and_lists() {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n",
    )
    .unwrap();
    let endpoint = format!("http://{}/storage/s3", server.host);
    let aws = |args: &[&str]| {
        let mut command = Command::new("aws");
        command
            .arg("--endpoint-url")
            .arg(&endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &server.cred.akid)
            .env("AWS_SECRET_ACCESS_KEY", &server.cred.secret)
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "");
        command
    };

    let version = run(aws(&["--version"]), "aws").await;
    check(&version, "aws --version (install: pip install awscli)");

    check(
        &run(aws(&["s3", "mb", "s3://cli-bucket"]), "aws").await,
        "aws s3 mb",
    );
    // Small (one PUT) and 9 MiB (multipart at the CLI's 8 MiB threshold).
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "small file\n").unwrap();
    let big = dir.path().join("big.bin");
    let data: Vec<u8> = (0..9 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    for (file, key) in [
        (&small, "s3://cli-bucket/docs/small.txt"),
        (&big, "s3://cli-bucket/big.bin"),
    ] {
        let up = run(aws(&["s3", "cp", file.to_str().unwrap(), key]), "aws").await;
        check(&up, "aws s3 cp (up)");
    }
    let down = dir.path().join("down.bin");
    let got = run(
        aws(&[
            "s3",
            "cp",
            "s3://cli-bucket/big.bin",
            down.to_str().unwrap(),
        ]),
        "aws",
    )
    .await;
    check(&got, "aws s3 cp (down)");
    assert!(
        std::fs::read(&down).unwrap() == data,
        "the downloaded file differs"
    );
    let down_small = dir.path().join("down.txt");
    let got = run(
        aws(&[
            "s3",
            "cp",
            "s3://cli-bucket/docs/small.txt",
            down_small.to_str().unwrap(),
        ]),
        "aws",
    )
    .await;
    check(&got, "aws s3 cp (down, small)");
    assert_eq!(
        std::fs::read_to_string(&down_small).unwrap(),
        "small file\n"
    );

    let buckets = run(aws(&["s3", "ls"]), "aws").await;
    check(&buckets, "aws s3 ls");
    assert!(String::from_utf8_lossy(&buckets.stdout).contains("cli-bucket"));
    let listed = run(aws(&["s3", "ls", "s3://cli-bucket/"]), "aws").await;
    check(&listed, "aws s3 ls s3://cli-bucket/");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("PRE docs/"), "{text}");
    assert!(text.contains(&format!("{} big.bin", data.len())), "{text}");
    let recursive = run(aws(&["s3", "ls", "--recursive", "s3://cli-bucket"]), "aws").await;
    check(&recursive, "aws s3 ls --recursive");
    assert!(String::from_utf8_lossy(&recursive.stdout).contains("docs/small.txt"));

    let removed = run(aws(&["s3", "rb", "--force", "s3://cli-bucket"]), "aws").await;
    check(&removed, "aws s3 rb --force");
    let buckets = run(aws(&["s3", "ls"]), "aws").await;
    assert!(!String::from_utf8_lossy(&buckets.stdout).contains("cli-bucket"));
}
