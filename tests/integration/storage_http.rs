//! Storage's HTTP API through a real socket, on the all-in-one's stores
//! (files for bytes, SQLite for descriptions): buckets, streaming objects,
//! ranges, conditions, rules, public buckets, signed URLs, multipart,
//! quotas, and the bad input of each.

use std::sync::Arc;

use bunbase_core::config::StoreUrl;
use bunbase_core::storage::adapters::fs::FsBlobs;
use bunbase_core::storage::{Quota, Storage, StorageLimits, StorageMetrics, StorageSecret};
use bunbase_tests::harness::{
    self, ALPHA, ALPHA_ALICE, ALPHA_BOB, ALPHA_PUBLISHABLE, ALPHA_READER, BETA, Options,
    RunningServer,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{http, unique};

struct Server {
    running: RunningServer,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn server_with(limits: StorageLimits) -> Server {
    let dir = std::env::temp_dir().join(unique("bunbase-storage-http-"));
    std::fs::create_dir_all(&dir).unwrap();
    let meta =
        bunbase_core::storage::adapters::sql::open(&StoreUrl::Sqlite(dir.join("storage.db")))
            .await
            .unwrap();
    let blobs = Arc::new(FsBlobs::open(&dir.join("blobs")).unwrap());
    let storage = Storage::new(
        meta,
        blobs,
        limits,
        StorageMetrics::unregistered(),
        StorageSecret::new(&[9; 32]),
    );
    let running = harness::start(Options {
        storage: Some(storage),
        ..Options::default()
    })
    .await;
    Server {
        running,
        _dir: TempDir(dir),
    }
}

async fn server() -> Server {
    server_with(StorageLimits::default()).await
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}/storage/v1/projects/{path}", self.running.url())
    }

    async fn bucket(&self, project_token: &str, project: &str, body: Value) -> reqwest::Response {
        http()
            .post(self.url(&format!("{project}/buckets")))
            .bearer_auth(project_token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn put(
        &self,
        token: Option<&str>,
        path: &str,
        body: &'static [u8],
        content_type: &str,
    ) -> reqwest::Response {
        let mut req = http()
            .put(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    async fn get(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut req = http().get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }
}

async fn code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn objects_stream_in_and_out_with_ranges_and_conditions() {
    let s = server().await;
    assert_eq!(
        s.bucket(ALPHA, "alpha", json!({"name": "docs"}))
            .await
            .status(),
        201
    );
    let put = s
        .put(
            Some(ALPHA),
            "alpha/buckets/docs/objects/dir/hello.txt",
            b"hello world",
            "text/plain",
        )
        .await;
    assert_eq!(put.status(), 200);
    let info: Value = put.json().await.unwrap();
    assert_eq!(info["size"], 11);
    assert_eq!(info["etag"], "5eb63bbbe01eeed093cb22bb8f5acdc3");

    let got = s
        .get(Some(ALPHA), "alpha/buckets/docs/objects/dir/hello.txt")
        .await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/plain");
    assert_eq!(
        got.headers()["etag"],
        "\"5eb63bbbe01eeed093cb22bb8f5acdc3\""
    );
    let last_modified = got.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello world");

    let range = |r: &'static str| {
        http()
            .get(s.url("alpha/buckets/docs/objects/dir/hello.txt"))
            .bearer_auth(ALPHA)
            .header("range", r)
    };
    let part = range("bytes=6-").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 6-10/11");
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"world");
    let suffix = range("bytes=-3").send().await.unwrap();
    assert_eq!(suffix.bytes().await.unwrap().as_ref(), b"rld");
    let beyond = range("bytes=20-").send().await.unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], "bytes */11");

    let cached = http()
        .get(s.url("alpha/buckets/docs/objects/dir/hello.txt"))
        .bearer_auth(ALPHA)
        .header("if-none-match", "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    let since = http()
        .get(s.url("alpha/buckets/docs/objects/dir/hello.txt"))
        .bearer_auth(ALPHA)
        .header("if-modified-since", last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(since.status(), 304);

    let head = http()
        .head(s.url("alpha/buckets/docs/objects/dir/hello.txt"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "11");

    // Create-only: a second put with If-None-Match: * changes nothing.
    let again = http()
        .put(s.url("alpha/buckets/docs/objects/dir/hello.txt"))
        .bearer_auth(ALPHA)
        .header("if-none-match", "*")
        .body("other")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(again).await,
        (
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed".into()
        )
    );
    let still = s
        .get(Some(ALPHA), "alpha/buckets/docs/objects/dir/hello.txt")
        .await;
    assert_eq!(still.bytes().await.unwrap().as_ref(), b"hello world");

    // Metadata travels in headers.
    let with_meta = http()
        .put(s.url("alpha/buckets/docs/objects/m.bin"))
        .bearer_auth(ALPHA)
        .header("x-bunbase-meta-color", "blue")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(with_meta.status(), 200);
    let got = s.get(Some(ALPHA), "alpha/buckets/docs/objects/m.bin").await;
    assert_eq!(got.headers()["x-bunbase-meta-color"], "blue");
    assert_eq!(got.headers()["content-type"], "application/octet-stream");

    let deleted = http()
        .delete(s.url("alpha/buckets/docs/objects/m.bin"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        code(s.get(Some(ALPHA), "alpha/buckets/docs/objects/m.bin").await)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_stores_nothing() {
    let s = server_with(StorageLimits {
        quota: Quota {
            max_bytes: 100,
            max_objects: 3,
        },
        ..StorageLimits::default()
    })
    .await;
    let made = s.bucket(ALPHA, "alpha", json!({"name": "bk1", "max_object_size": 50, "allowed_content_types": ["image/*", "text/plain"]})).await;
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    // Bucket names and unknown fields.
    assert_eq!(
        code(s.bucket(ALPHA, "alpha", json!({"name": "Bad_Name"})).await)
            .await
            .1,
        "invalid_input"
    );
    assert_eq!(
        code(
            s.bucket(ALPHA, "alpha", json!({"name": "bk2", "colour": 1}))
                .await
        )
        .await
        .1,
        "invalid_input"
    );
    assert_eq!(
        code(s.bucket(ALPHA, "alpha", json!({"name": "bk1"})).await)
            .await
            .1,
        "already_exists"
    );
    assert_eq!(
        code(
            s.bucket(
                ALPHA,
                "alpha",
                json!({"name": "bk3", "rules": {"read": "auth.uid =="}})
            )
            .await
        )
        .await
        .1,
        "invalid_input"
    );
    assert_eq!(
        code(
            s.bucket(ALPHA_READER, "alpha", json!({"name": "bk4"}))
                .await
        )
        .await
        .1,
        "permission_denied"
    );

    // Traversal: percent-encoded so the client sends it as is.
    let traversal = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/a%2F..%2Fetc%2Fpasswd",
            b"x",
            "text/plain",
        )
        .await;
    assert_eq!(code(traversal).await.1, "invalid_input");
    let nul = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/a%00b",
            b"x",
            "text/plain",
        )
        .await;
    assert_eq!(code(nul).await.1, "invalid_input");
    // Over the bucket's size limit, a refused content type.
    let big = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/big.txt",
            &[b'x'; 60],
            "text/plain",
        )
        .await;
    assert_eq!(
        code(big).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
    let pdf = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/a.pdf",
            b"%PDF",
            "application/pdf",
        )
        .await;
    assert_eq!(code(pdf).await.1, "invalid_input");
    // No Content-Length (a streamed body is sent chunked).
    let chunked = http()
        .put(s.url("alpha/buckets/bk1/objects/chunked.txt"))
        .bearer_auth(ALPHA)
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            vec![Ok::<_, std::io::Error>(vec![b'a'; 5])],
        )))
        .send()
        .await
        .unwrap();
    let (status, c) = code(chunked).await;
    assert_eq!((status.as_u16(), c.as_str()), (400, "invalid_input"));
    // Quota: bytes, then objects.
    for i in 0..2 {
        let ok = s
            .put(
                Some(ALPHA),
                &format!("alpha/buckets/bk1/objects/q{i}.txt"),
                &[b'q'; 45],
                "text/plain",
            )
            .await;
        assert_eq!(ok.status(), 200);
    }
    let over = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/q3.txt",
            &[b'q'; 20],
            "text/plain",
        )
        .await;
    assert_eq!(
        code(over).await,
        (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded".into())
    );
    let small = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/q4.txt",
            b"x",
            "text/plain",
        )
        .await;
    assert_eq!(small.status(), 200);
    let fourth = s
        .put(
            Some(ALPHA),
            "alpha/buckets/bk1/objects/q5.txt",
            b"x",
            "text/plain",
        )
        .await;
    assert_eq!(code(fourth).await.1, "quota_exceeded");
    let usage: Value = s
        .get(Some(ALPHA), "alpha/usage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["usage"], json!({"bytes": 91, "objects": 3}));

    // Another project's credential sees nothing of alpha's buckets.
    assert_eq!(
        code(s.get(Some(BETA), "alpha/buckets/bk1/objects/q0.txt").await)
            .await
            .1,
        "permission_denied"
    );
    assert_eq!(
        code(s.get(Some(BETA), "alpha/buckets").await).await.1,
        "permission_denied"
    );
    assert_eq!(
        code(s.get(Some(BETA), "beta/buckets/bk1/objects/q0.txt").await)
            .await
            .1,
        "not_found"
    );
    let beta_buckets: Value = s
        .get(Some(BETA), "beta/buckets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(beta_buckets["buckets"], json!([]));
    // A private bucket without a credential.
    assert_eq!(
        code(s.get(None, "alpha/buckets/bk1/objects/q0.txt").await)
            .await
            .1,
        "unauthenticated"
    );

    // A non-empty bucket is not deleted, unless forced.
    let refuse = http()
        .delete(s.url("alpha/buckets/bk1"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(refuse).await,
        (StatusCode::CONFLICT, "conflict".into())
    );
    let forced = http()
        .delete(s.url("alpha/buckets/bk1?force=true"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 204);
    let usage: Value = s
        .get(Some(ALPHA), "alpha/usage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["usage"], json!({"bytes": 0, "objects": 0}));
}

#[tokio::test]
async fn rules_scope_end_users_to_their_folders_and_public_buckets_read_anonymously() {
    let s = server().await;
    let rules = json!({
        "read": "resource.path.0 == \"users\" && resource.path.1 == auth.uid",
        "write": "request.path.0 == \"users\" && request.path.1 == auth.uid && request.size <= 1000",
        "delete": "resource.owner == auth.uid"
    });
    assert_eq!(
        s.bucket(ALPHA, "alpha", json!({"name": "avatars", "rules": rules}))
            .await
            .status(),
        201
    );
    let mine = s
        .put(
            Some(ALPHA_ALICE),
            "alpha/buckets/avatars/objects/users/alice/avatar.png",
            b"png",
            "image/png",
        )
        .await;
    assert_eq!(mine.status(), 200);
    let info: Value = mine.json().await.unwrap();
    assert_eq!(info["owner"], "alice");
    let theirs = s
        .put(
            Some(ALPHA_ALICE),
            "alpha/buckets/avatars/objects/users/bob/avatar.png",
            b"png",
            "image/png",
        )
        .await;
    assert_eq!(code(theirs).await.1, "permission_denied");
    let anon_key = s
        .put(
            Some(ALPHA_PUBLISHABLE),
            "alpha/buckets/avatars/objects/users/x/a.png",
            b"png",
            "image/png",
        )
        .await;
    assert_eq!(code(anon_key).await.1, "permission_denied");
    // Bob neither reads nor learns of alice's object; nor does he list it.
    assert_eq!(
        code(
            s.get(
                Some(ALPHA_BOB),
                "alpha/buckets/avatars/objects/users/alice/avatar.png"
            )
            .await
        )
        .await
        .1,
        "not_found"
    );
    let listed: Value = s
        .get(
            Some(ALPHA_BOB),
            "alpha/buckets/avatars/objects?prefix=users/&delimiter=/",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["prefixes"], json!([]));
    assert_eq!(listed["objects"], json!([]));
    let alice_list: Value = s
        .get(
            Some(ALPHA_ALICE),
            "alpha/buckets/avatars/objects?prefix=users/&delimiter=/",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alice_list["prefixes"], json!(["users/alice/"]));
    let bob_delete = http()
        .delete(s.url("alpha/buckets/avatars/objects/users/alice/avatar.png"))
        .bearer_auth(ALPHA_BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(code(bob_delete).await.1, "not_found");
    let got = s
        .get(
            Some(ALPHA_ALICE),
            "alpha/buckets/avatars/objects/users/alice/avatar.png",
        )
        .await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"png");

    // Public: anyone reads, nobody anonymous writes or lists beyond reads.
    assert_eq!(
        s.bucket(ALPHA, "alpha", json!({"name": "site", "public": true}))
            .await
            .status(),
        201
    );
    assert_eq!(
        s.put(
            Some(ALPHA),
            "alpha/buckets/site/objects/index.html",
            b"<h1>hi</h1>",
            "text/html"
        )
        .await
        .status(),
        200
    );
    let anonymous = s.get(None, "alpha/buckets/site/objects/index.html").await;
    assert_eq!(anonymous.status(), 200);
    assert_eq!(anonymous.bytes().await.unwrap().as_ref(), b"<h1>hi</h1>");
    let write = s
        .put(None, "alpha/buckets/site/objects/x.html", b"x", "text/html")
        .await;
    assert_eq!(code(write).await.1, "unauthenticated");
    let patch = http()
        .patch(s.url("alpha/buckets/site"))
        .bearer_auth(ALPHA)
        .json(&json!({"public": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(
        code(s.get(None, "alpha/buckets/site/objects/index.html").await)
            .await
            .1,
        "unauthenticated"
    );
}

#[tokio::test]
async fn signed_urls_grant_one_key_until_they_expire() {
    let s = server().await;
    assert_eq!(
        s.bucket(ALPHA, "alpha", json!({"name": "uploads"}))
            .await
            .status(),
        201
    );
    let sign = |body: Value| {
        http()
            .post(s.url("alpha/buckets/uploads/sign"))
            .bearer_auth(ALPHA)
            .json(&body)
            .send()
    };
    let put: Value = sign(json!({"key": "in/photo.png", "method": "PUT", "expires_in": 60, "content_type": "image/png", "max_size": 10}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let put_url = format!("{}{}", s.running.url(), put["url"].as_str().unwrap());
    let wrong_type = http()
        .put(&put_url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(code(wrong_type).await.1, "permission_denied");
    let too_big = http()
        .put(&put_url)
        .header("content-type", "image/png")
        .body(vec![0u8; 11])
        .send()
        .await
        .unwrap();
    assert_eq!(code(too_big).await.1, "payload_too_large");
    let stored = http()
        .put(&put_url)
        .header("content-type", "image/png")
        .body("png!")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);

    let get: Value = sign(json!({"key": "in/photo.png", "expires_in": 60}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let get_url = format!("{}{}", s.running.url(), get["url"].as_str().unwrap());
    let fetched = http().get(&get_url).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"png!");
    // The GET URL does not PUT, another key is not covered, tampering fails.
    assert_eq!(
        code(http().put(&get_url).body("x").send().await.unwrap())
            .await
            .1,
        "permission_denied"
    );
    let other_key = get_url.replace("in/photo.png", "in/other.png");
    assert_eq!(
        code(http().get(&other_key).send().await.unwrap()).await.1,
        "permission_denied"
    );
    let later = get_url.replace("expires=", "expires=9");
    assert_eq!(
        code(http().get(&later).send().await.unwrap()).await.1,
        "permission_denied"
    );
    // Limits of signing.
    let week_plus = sign(json!({"key": "k", "expires_in": 8 * 24 * 3600}))
        .await
        .unwrap();
    assert_eq!(code(week_plus).await.1, "invalid_input");
    let reader = http()
        .post(s.url("alpha/buckets/uploads/sign"))
        .bearer_auth(ALPHA_READER)
        .json(&json!({"key": "k", "method": "PUT", "expires_in": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(reader).await.1, "permission_denied");
    // An expired URL: one second of validity, then wait it out.
    let short: Value = sign(json!({"key": "in/photo.png", "expires_in": 1}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = http()
        .get(format!(
            "{}{}",
            s.running.url(),
            short["url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(expired).await,
        (StatusCode::FORBIDDEN, "permission_denied".into())
    );
}

#[tokio::test]
async fn listings_page_by_folder_and_copies_and_moves_stay_in_the_project() {
    let s = server().await;
    assert_eq!(
        s.bucket(ALPHA, "alpha", json!({"name": "tree"}))
            .await
            .status(),
        201
    );
    for key in ["a/1", "a/2", "b/1", "c", "d", "e/x/y"] {
        assert_eq!(
            s.put(
                Some(ALPHA),
                &format!("alpha/buckets/tree/objects/{key}"),
                b"v",
                "text/plain"
            )
            .await
            .status(),
            200
        );
    }
    let mut seen_objects = Vec::new();
    let mut seen_prefixes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "alpha/buckets/tree/objects?delimiter=/&limit=2".to_string();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page: Value = s.get(Some(ALPHA), &url).await.json().await.unwrap();
        for o in page["objects"].as_array().unwrap() {
            seen_objects.push(o["key"].as_str().unwrap().to_string());
        }
        for p in page["prefixes"].as_array().unwrap() {
            seen_prefixes.push(p.as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen_objects, ["c", "d"]);
    assert_eq!(seen_prefixes, ["a/", "b/", "e/"]);

    let copied = http()
        .post(s.url("alpha/buckets/tree/copy"))
        .bearer_auth(ALPHA)
        .json(&json!({"from": "c", "to": "copies/c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(copied.status(), 200);
    let moved = http()
        .post(s.url("alpha/buckets/tree/move"))
        .bearer_auth(ALPHA)
        .json(&json!({"from": "d", "to": "moved/d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(
        s.get(Some(ALPHA), "alpha/buckets/tree/objects/copies/c")
            .await
            .status(),
        200
    );
    assert_eq!(
        s.get(Some(ALPHA), "alpha/buckets/tree/objects/c")
            .await
            .status(),
        200
    );
    assert_eq!(
        code(s.get(Some(ALPHA), "alpha/buckets/tree/objects/d").await)
            .await
            .1,
        "not_found"
    );
    assert_eq!(
        s.get(Some(ALPHA), "alpha/buckets/tree/objects/moved/d")
            .await
            .text()
            .await
            .unwrap(),
        "v"
    );
    // Beta cannot copy out of alpha.
    let stolen = http()
        .post(s.url("alpha/buckets/tree/copy"))
        .bearer_auth(BETA)
        .json(&json!({"from": "c", "to": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(stolen).await.1, "permission_denied");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn multipart_uploads_assemble_parts_and_refuse_bad_completions() {
    let s = server().await;
    assert_eq!(
        s.bucket(ALPHA, "alpha", json!({"name": "big"}))
            .await
            .status(),
        201
    );
    let created: Value = http()
        .post(s.url("alpha/buckets/big/uploads"))
        .bearer_auth(ALPHA)
        .json(&json!({"key": "video.bin", "content_type": "video/mp4"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let five_mib = vec![7u8; 5 * 1024 * 1024];
    let put_part = |n: u32, body: Vec<u8>| {
        http()
            .put(s.url(&format!("alpha/buckets/big/uploads/{id}/parts/{n}")))
            .bearer_auth(ALPHA)
            .body(body)
            .send()
    };
    let p1: Value = put_part(1, five_mib.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p2: Value = put_part(2, b"tail".to_vec())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let complete = |parts: Value| {
        http()
            .post(s.url(&format!("alpha/buckets/big/uploads/{id}/complete")))
            .bearer_auth(ALPHA)
            .json(&json!({ "parts": parts }))
            .send()
    };
    let missing = complete(json!([{"number": 1, "etag": p1["etag"]}, {"number": 3, "etag": "x"}]))
        .await
        .unwrap();
    assert_eq!(code(missing).await.1, "invalid_input");
    let wrong_order =
        complete(json!([{"number": 2, "etag": p2["etag"]}, {"number": 1, "etag": p1["etag"]}]))
            .await
            .unwrap();
    assert_eq!(code(wrong_order).await.1, "invalid_input");
    assert_eq!(
        code(
            s.get(Some(ALPHA), "alpha/buckets/big/objects/video.bin")
                .await
        )
        .await
        .1,
        "not_found"
    );
    let done =
        complete(json!([{"number": 1, "etag": p1["etag"]}, {"number": 2, "etag": p2["etag"]}]))
            .await
            .unwrap();
    assert_eq!(done.status(), 200);
    let info: Value = done.json().await.unwrap();
    assert_eq!(info["size"], 5 * 1024 * 1024 + 4);
    assert!(info["etag"].as_str().unwrap().ends_with("-2"));
    let body = s
        .get(Some(ALPHA), "alpha/buckets/big/objects/video.bin")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 5 * 1024 * 1024 + 4);
    assert_eq!(&body[body.len() - 4..], b"tail");
    // A small part that is not last is refused; abort leaves nothing.
    let second: Value = http()
        .post(s.url("alpha/buckets/big/uploads"))
        .bearer_auth(ALPHA)
        .json(&json!({"key": "small.bin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id2 = second["id"].as_str().unwrap();
    for n in [1, 2] {
        let r = http()
            .put(s.url(&format!("alpha/buckets/big/uploads/{id2}/parts/{n}")))
            .bearer_auth(ALPHA)
            .body("small")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let parts: Value = http()
        .get(s.url(&format!("alpha/buckets/big/uploads/{id2}/parts")))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let real = parts["parts"][0]["etag"].as_str().unwrap().to_string();
    let small = http()
        .post(s.url(&format!("alpha/buckets/big/uploads/{id2}/complete")))
        .bearer_auth(ALPHA)
        .json(&json!({"parts": [{"number": 1, "etag": real}, {"number": 2, "etag": real}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(small).await.1, "invalid_input");
    let beta = http()
        .delete(s.url(&format!("alpha/buckets/big/uploads/{id2}")))
        .bearer_auth(BETA)
        .send()
        .await
        .unwrap();
    assert_eq!(code(beta).await.1, "permission_denied");
    let aborted = http()
        .delete(s.url(&format!("alpha/buckets/big/uploads/{id2}")))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(aborted.status(), 204);
    let uploads: Value = s
        .get(Some(ALPHA), "alpha/buckets/big/uploads")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(uploads["uploads"], json!([]));
}

#[tokio::test]
async fn s3_credentials_are_issued_once_listed_and_revoked_by_admins() {
    let s = server().await;
    let base = s.running.url();
    let made = http()
        .post(format!("{base}/api/v1/projects/alpha/storage/credentials"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let id = made["access_key_id"].as_str().unwrap();
    assert_eq!(made["secret_access_key"].as_str().unwrap().len(), 40);
    let listed: Value = http()
        .get(format!("{base}/api/v1/projects/alpha/storage/credentials"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["credentials"][0]["access_key_id"], id);
    assert!(listed.to_string().find("secret").is_none(), "{listed}");
    let reader = http()
        .post(format!("{base}/api/v1/projects/alpha/storage/credentials"))
        .bearer_auth(ALPHA_READER)
        .send()
        .await
        .unwrap();
    assert_eq!(code(reader).await.1, "permission_denied");
    let beta = http()
        .delete(format!(
            "{base}/api/v1/projects/beta/storage/credentials/{id}"
        ))
        .bearer_auth(BETA)
        .send()
        .await
        .unwrap();
    assert_eq!(code(beta).await.1, "not_found");
    let revoked = http()
        .delete(format!(
            "{base}/api/v1/projects/alpha/storage/credentials/{id}"
        ))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
}
