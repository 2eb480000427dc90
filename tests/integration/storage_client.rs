//! `bunbase-client`'s storage calls against a running server.

use std::sync::Arc;

use bunbase_client::{BucketSettings, Client, PutOptions};
use bunbase_core::ErrorCode;
use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
use bunbase_core::storage::{Storage, StorageLimits, StorageMetrics, StorageSecret};
use bunbase_tests::harness::{self, ALPHA, BETA, Options};
use bytes::Bytes;
use serde_json::json;

#[tokio::test]
async fn typed_calls_cover_buckets_objects_signing_multipart_and_credentials() {
    let storage = Storage::new(
        Arc::new(MemoryMeta::new()),
        Arc::new(MemoryBlobs::new()),
        StorageLimits::default(),
        StorageMetrics::unregistered(),
        StorageSecret::new(&[3; 32]),
    );
    let server = harness::start(Options {
        storage: Some(storage),
        ..Options::default()
    })
    .await;
    let client = Client::new(server.url()).unwrap().with_token(ALPHA);
    let files = client.storage();
    let settings = BucketSettings {
        allowed_content_types: vec!["text/*".into()],
        ..Default::default()
    };
    let bucket = files
        .create_bucket("alpha", "notes", &settings)
        .await
        .unwrap();
    assert_eq!(bucket.settings.allowed_content_types, ["text/*"]);
    assert_eq!(files.buckets("alpha").await.unwrap().len(), 1);
    let text = PutOptions {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    files
        .put("alpha", "notes", "a/one.txt", "first", &text)
        .await
        .unwrap();
    let chunks = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from_static(b"stre")),
        Ok(Bytes::from_static(b"amed")),
    ]);
    let streamed = files
        .put_stream("alpha", "notes", "a/two.txt", 8, chunks, &text)
        .await
        .unwrap();
    assert_eq!(streamed.size, 8);
    let refused = files
        .put("alpha", "notes", "x.bin", "x", &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidInput);
    let create_only = PutOptions {
        if_absent: true,
        ..text.clone()
    };
    let exists = files
        .put("alpha", "notes", "a/one.txt", "again", &create_only)
        .await
        .unwrap_err();
    assert_eq!(exists.code(), ErrorCode::PreconditionFailed);

    let whole = files
        .get("alpha", "notes", "a/two.txt", None)
        .await
        .unwrap();
    assert_eq!(whole.content_type, "text/plain");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), b"streamed");
    let tail = files
        .get("alpha", "notes", "a/two.txt", Some("bytes=-4"))
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap().as_ref(), b"amed");
    let page = files
        .list("alpha", "notes", "", Some("/"), None, None)
        .await
        .unwrap();
    assert_eq!(page.prefixes, ["a/"]);
    files
        .copy("alpha", "notes", "a/one.txt", "b/one.txt", None, true)
        .await
        .unwrap();
    let missing = files
        .get("alpha", "notes", "a/one.txt", None)
        .await
        .err()
        .unwrap();
    assert_eq!(missing.code(), ErrorCode::NotFound);

    let signed = files
        .sign(
            "alpha",
            "notes",
            &json!({"key": "b/one.txt", "expires_in": 60}),
        )
        .await
        .unwrap();
    let anonymous = reqwest::get(&signed.url).await.unwrap();
    assert_eq!(anonymous.text().await.unwrap(), "first");

    let upload = files
        .create_upload("alpha", "notes", "big.txt", Some("text/plain"))
        .await
        .unwrap();
    let p1 = files
        .upload_part("alpha", "notes", &upload.id, 1, vec![b'x'; 5 * 1024 * 1024])
        .await
        .unwrap();
    let p2 = files
        .upload_part("alpha", "notes", &upload.id, 2, "end")
        .await
        .unwrap();
    let done = files
        .complete_upload("alpha", "notes", &upload.id, &[p1, p2])
        .await
        .unwrap();
    assert_eq!(done.size, 5 * 1024 * 1024 + 3);
    let usage = files.usage("alpha").await.unwrap();
    assert_eq!(usage.objects, 3);

    let credential = files.create_s3_credential("alpha").await.unwrap();
    assert_eq!(files.s3_credentials("alpha").await.unwrap().len(), 1);
    files
        .revoke_s3_credential("alpha", &credential.access_key_id)
        .await
        .unwrap();
    assert!(files.s3_credentials("alpha").await.unwrap().is_empty());

    let beta = Client::new(server.url())
        .unwrap()
        .with_token(BETA)
        .storage();
    let denied = beta.buckets("alpha").await.unwrap_err();
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    files.delete_bucket("alpha", "notes", true).await.unwrap();
    assert!(files.buckets("alpha").await.unwrap().is_empty());
}
