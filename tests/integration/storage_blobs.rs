//! The blob store conformance suite on every blob store: memory, files in a
//! temp dir, and S3 on a real SeaweedFS (which checks signatures); plus
//! what only one store can show (temp files, abandoned S3 uploads).

use std::path::Path;
use std::time::{Duration, Instant};

use bunbase_core::ErrorCode;
use bunbase_core::error::Error;
use bunbase_core::id::random_hex;
use bunbase_core::storage::BlobStore;
use bunbase_core::storage::adapters::fs::FsBlobs;
use bunbase_core::storage::adapters::memory::MemoryBlobs;
use bunbase_core::storage::adapters::s3::S3Blobs;
use bunbase_core::storage::blob::{ByteRange, ByteStream};
use bunbase_core::storage::testing::blobs::{
    assert_code, assert_missing, chunked, failing, new_id, pattern, read, suite,
};
use bunbase_tests::seaweed::seaweed;
use futures_util::StreamExt;

const MIB: usize = 1024 * 1024;

/// `bytes` in chunks, then nothing ever again (a client that stalls).
fn stalling(bytes: &[u8], chunk: usize) -> ByteStream {
    Box::pin(chunked(bytes, chunk).chain(futures_util::stream::pending()))
}

/// The names in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn memory() {
    let store = MemoryBlobs::new();
    suite(&store).await;
    assert!(store.is_empty(), "the suite deletes what it stores");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobs::open(dir.path()).unwrap();
    assert!(store.describe().contains(&dir.path().display().to_string()));
    suite(&store).await;
    let root = dir.path();
    assert_eq!(
        entries(&root.join("tmp")),
        Vec::<String>::new(),
        "temp files left"
    );
    assert_eq!(
        entries(&root.join("parts")),
        Vec::<String>::new(),
        "uploads left"
    );
    let blobs: usize = entries(&root.join("blobs"))
        .iter()
        .map(|fan| entries(&root.join("blobs").join(fan)).len())
        .sum();
    assert_eq!(blobs, 0, "the suite deletes what it stores");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_leave_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let store = FsBlobs::open(dir.path()).unwrap();
    let bytes = pattern(10, 3 * MIB);

    // A body that fails half way.
    let id = new_id();
    let body = failing(&bytes, 100_000, Error::PayloadTooLarge("too big".into()));
    assert_code(
        store.put(&id, body).await,
        ErrorCode::PayloadTooLarge,
        "failing put",
    );
    assert_eq!(entries(&tmp), Vec::<String>::new(), "after a failed put");

    // A put (and a part) dropped half way: the client stalled and the
    // request was given up.
    let id = new_id();
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        store.put(&id, stalling(&bytes, 100_000)),
    )
    .await;
    assert!(dropped.is_err(), "the put waits for the stalled body");
    assert_eq!(entries(&tmp), Vec::<String>::new(), "after a dropped put");
    assert_missing(&store, &id, "blob of a dropped put").await;
    let handle = store.begin_parts(&id).await.unwrap();
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        store.put_part(&id, &handle, 1, stalling(&bytes, 100_000)),
    )
    .await;
    assert!(dropped.is_err());
    assert_eq!(entries(&tmp), Vec::<String>::new(), "after a dropped part");
    store.abort_parts(&id, &handle).await.unwrap();
    assert_eq!(entries(&dir.path().join("parts")), Vec::<String>::new());

    // What a crash left in tmp/ goes at the next open; blobs stay.
    let kept = new_id();
    store.put(&kept, chunked(b"kept", 2)).await.unwrap();
    std::fs::write(tmp.join("0123456789abcdef"), b"half a blob").unwrap();
    drop(store);
    let store = FsBlobs::open(dir.path()).unwrap();
    assert_eq!(entries(&tmp), Vec::<String>::new(), "leftovers after open");
    assert_eq!(read(&store, &kept, None).await, b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_refuse_ids_and_handles_that_are_not_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobs::open(&dir.path().join("storage")).unwrap();
    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"secret").unwrap();
    let good = new_id();
    store.put(&good, chunked(b"mine", 4)).await.unwrap();
    for bad in [
        "../outside",
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "ABCDEF0123456789ABCDEF0123456789",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdef0123456789abcde/",
        "",
    ] {
        assert!(store.get(bad, None).await.is_err(), "get {bad:?}");
        assert!(
            store.put(bad, chunked(b"x", 1)).await.is_err(),
            "put {bad:?}"
        );
        assert!(store.delete(bad).await.is_err(), "delete {bad:?}");
        assert!(store.copy(&good, bad).await.is_err(), "copy to {bad:?}");
        assert!(store.copy(bad, &good).await.is_err(), "copy from {bad:?}");
        assert!(store.begin_parts(bad).await.is_err(), "begin_parts {bad:?}");
    }
    let handle = store.begin_parts(&good).await.unwrap();
    let other = new_id();
    for bad in [
        "../../outside".to_string(),
        format!("{good}-../../../outside"),
        format!("{other}-0123456789abcdef"),
        format!("{good}-0123456789ABCDEF"),
        format!("{good}/0123456789abcdef"),
        good.clone(),
    ] {
        let part = store.put_part(&good, &bad, 1, chunked(b"x", 1)).await;
        assert!(part.is_err(), "put_part {bad:?}");
        assert!(
            store.complete_parts(&good, &bad, &[]).await.is_err(),
            "complete_parts {bad:?}"
        );
        assert!(
            store.abort_parts(&good, &bad).await.is_err(),
            "abort_parts {bad:?}"
        );
    }
    // Another blob's id with this upload's handle.
    assert!(
        store
            .put_part(&other, &handle, 1, chunked(b"x", 1))
            .await
            .is_err()
    );
    // Receipts are checked too.
    assert!(
        store
            .complete_parts(&good, &handle, &[(1, "../../../outside".into())])
            .await
            .is_err()
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    assert_eq!(read(&store, &good, None).await, b"mine");
}

/// A fresh bucket name.
fn bucket() -> String {
    format!("bunbase-{}", random_hex(6))
}

/// A store on a fresh bucket of the test SeaweedFS.
async fn s3_store(bucket: &str) -> S3Blobs {
    S3Blobs::connect(&seaweed().url(bucket))
        .await
        .unwrap_or_else(|e| panic!("connecting to SeaweedFS: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_seaweedfs() {
    let name = bucket();
    let store = s3_store(&name).await;
    assert_eq!(
        store.describe(),
        format!("s3 http://{}/{name}", seaweed().s3_addr)
    );
    suite(&store).await;
    // Connecting again finds the bucket there.
    s3_store(&name).await.check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_streams_large_blobs_in_parts_and_aborts_failed_ones() {
    let store = s3_store(&bucket()).await;

    // Over the 8 MiB part size: a multipart upload, read back whole and in
    // ranges across the parts.
    let id = new_id();
    let bytes = pattern(20, 17 * MIB + 3);
    assert_eq!(
        store.put(&id, chunked(&bytes, MIB - 1)).await.unwrap(),
        bytes.len() as u64
    );
    assert!(read(&store, &id, None).await == bytes, "17 MiB round trip");
    let part = 8 * MIB as u64;
    for (start, end) in [
        (part - 1, part),
        (2 * part - 5, 2 * part + 5),
        (0, 17 * MIB as u64 + 2),
    ] {
        let got = read(&store, &id, Some(ByteRange { start, end })).await;
        assert!(
            got == bytes[start as usize..=end as usize],
            "range {start}-{end}"
        );
    }
    assert!(store.pending_uploads(&id).await.unwrap().is_empty());
    store.delete(&id).await.unwrap();

    // Failing after a part was sent: the body's error, no object, no upload
    // left in the bucket.
    let id = new_id();
    let body = failing(
        &bytes[..9 * MIB],
        MIB,
        Error::PayloadTooLarge("too big".into()),
    );
    assert_code(
        store.put(&id, body).await,
        ErrorCode::PayloadTooLarge,
        "failing put",
    );
    assert_missing(&store, &id, "blob of a failed put").await;
    assert_eq!(
        store.pending_uploads(&id).await.unwrap(),
        Vec::<String>::new()
    );

    // Dropped half way (the client stalled): the upload is aborted.
    let id = new_id();
    let dropped = tokio::time::timeout(
        Duration::from_secs(3),
        store.put(&id, stalling(&bytes[..9 * MIB], MIB)),
    )
    .await;
    assert!(dropped.is_err(), "the put waits for the stalled body");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pending = store.pending_uploads(&id).await.unwrap();
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "upload {pending:?} never aborted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_missing(&store, &id, "blob of a dropped put").await;

    // begin_parts' uploads are what pending_uploads lists.
    let id = new_id();
    let handle = store.begin_parts(&id).await.unwrap();
    assert_eq!(
        store.pending_uploads(&id).await.unwrap(),
        vec![handle.clone()]
    );
    store.abort_parts(&id, &handle).await.unwrap();
    assert!(store.pending_uploads(&id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_wrong_credentials() {
    let server = seaweed();
    let wrong_secret = format!(
        "s3://{}:{}@{}/{}?secure=false",
        server.access_key,
        "wrong-secret-0123456789",
        server.s3_addr,
        bucket()
    );
    let e = S3Blobs::connect(&wrong_secret).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Internal, "{e}");
    let message = e.to_string();
    assert!(message.contains("403"), "{message}");
    assert!(
        message.contains("check the access key and secret"),
        "{message}"
    );
    assert!(
        !message.contains("wrong-secret"),
        "the secret is not echoed: {message}"
    );

    let wrong_key = format!(
        "s3://nobody:{}@{}/{}?secure=false",
        server.secret_key,
        server.s3_addr,
        bucket()
    );
    let e = S3Blobs::connect(&wrong_key).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Internal, "{e}");
    assert!(
        e.to_string().contains("check the access key and secret"),
        "{e}"
    );

    // The right ones work.
    let store = s3_store(&bucket()).await;
    let id = new_id();
    store.put(&id, chunked(b"signed", 3)).await.unwrap();
    assert_eq!(read(&store, &id, None).await, b"signed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_server_is_unavailable() {
    let port = bunbase_tests::servers::free_port();
    let url = format!("s3://key:secret@127.0.0.1:{port}/bucket?secure=false");
    let e = S3Blobs::connect(&url).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn s3_urls_are_checked_before_connecting() {
    for url in [
        "http://key:secret@127.0.0.1:9/bucket",
        "s3://key:secret@127.0.0.1:9",
        "s3://key:secret@127.0.0.1:9/Not_A_Bucket",
        "s3://key:secret@127.0.0.1:9/bucket?color=blue",
    ] {
        let e = S3Blobs::connect(url).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput, "{url}: {e}");
        assert!(!e.to_string().contains("secret@"), "{e}");
    }
}
