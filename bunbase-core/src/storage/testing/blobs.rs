//! The blob store conformance suite.
//!
//! Every [`BlobStore`] must pass [`suite`]. It works on fresh random ids, so
//! it can run again and again on a shared store; it moves about 20 MiB and
//! panics on the first difference.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::{Error, ErrorCode};
use crate::id::random_hex;
use crate::storage::blob::{BlobStore, ByteRange, ByteStream};

const MIB: usize = 1024 * 1024;
/// S3's smallest part but the last.
const PART: usize = 5 * MIB;

/// Runs every check on `store`.
pub async fn suite(store: &dyn BlobStore) {
    assert!(!store.describe().is_empty());
    store.check().await.expect("check");
    round_trips(store).await;
    ranges(store).await;
    missing_blobs(store).await;
    deleting(store).await;
    copying(store).await;
    failed_writes(store).await;
    multipart(store).await;
    aborted_uploads(store).await;
}

/// A fresh blob id.
pub fn new_id() -> String {
    random_hex(16)
}

/// `len` bytes that differ from those of any other `seed` or position, so
/// that a misplaced chunk shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// `bytes` as a stream of `chunk`-byte chunks.
pub fn chunked(bytes: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, Error>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

/// `bytes` in chunks, then `error`.
pub fn failing(bytes: &[u8], chunk: usize, error: Error) -> ByteStream {
    Box::pin(chunked(bytes, chunk).chain(futures_util::stream::iter([Err(error)])))
}

/// All of a stream.
pub async fn collect(mut body: ByteStream) -> Result<Vec<u8>, Error> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out.to_vec())
}

/// The blob's bytes (or a range of them).
pub async fn read(store: &dyn BlobStore, id: &str, range: Option<ByteRange>) -> Vec<u8> {
    let body = store
        .get(id, range)
        .await
        .unwrap_or_else(|e| panic!("get {id} {range:?}: {e}"));
    collect(body)
        .await
        .unwrap_or_else(|e| panic!("reading {id} {range:?}: {e}"))
}

/// Asserts that `result` is an error of `code`.
#[track_caller]
pub fn assert_code<T: Debug>(result: Result<T, Error>, code: ErrorCode, what: &str) {
    match result {
        Ok(value) => panic!("{what}: expected {code:?}, got Ok({value:?})"),
        Err(e) => assert_eq!(e.code(), code, "{what}: {e}"),
    }
}

/// Asserts that there is no blob `id`.
pub async fn assert_missing(store: &dyn BlobStore, id: &str, what: &str) {
    match store.get(id, None).await {
        Ok(body) => {
            let bytes = collect(body).await;
            panic!(
                "{what}: blob {id} exists: {:?} bytes",
                bytes.map(|b| b.len())
            );
        }
        Err(e) => assert_eq!(e.code(), ErrorCode::NotFound, "{what}: {e}"),
    }
}

/// Asserts two byte strings are equal without printing megabytes.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

fn range(start: u64, end: u64) -> Option<ByteRange> {
    Some(ByteRange { start, end })
}

async fn put(store: &dyn BlobStore, id: &str, bytes: &[u8], chunk: usize) {
    let stored = store
        .put(id, chunked(bytes, chunk))
        .await
        .unwrap_or_else(|e| panic!("put {id} ({} bytes): {e}", bytes.len()));
    assert_eq!(
        stored,
        bytes.len() as u64,
        "put {id} returns the bytes stored"
    );
}

async fn round_trips(store: &dyn BlobStore) {
    // Empty: a stream of no chunks, and of one empty chunk.
    let empty = new_id();
    assert_eq!(
        store
            .put(&empty, Box::pin(futures_util::stream::empty()))
            .await
            .unwrap(),
        0
    );
    assert_bytes(&read(store, &empty, None).await, b"", "empty blob");
    let empty_chunk = new_id();
    let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::new())]));
    assert_eq!(store.put(&empty_chunk, body).await.unwrap(), 0);
    assert_bytes(&read(store, &empty_chunk, None).await, b"", "empty chunk");

    let one = new_id();
    put(store, &one, b"x", 1).await;
    assert_bytes(&read(store, &one, None).await, b"x", "one byte");

    // Several MiB in many odd-sized chunks.
    let big = new_id();
    let bytes = pattern(1, 3 * MIB + 17);
    put(store, &big, &bytes, 64 * 1024 + 3).await;
    assert_bytes(&read(store, &big, None).await, &bytes, "3 MiB");

    // Ids are independent.
    assert_bytes(&read(store, &one, None).await, b"x", "one byte, again");
    for id in [empty, empty_chunk, one, big] {
        store.delete(&id).await.unwrap();
    }
}

async fn ranges(store: &dyn BlobStore) {
    let id = new_id();
    let bytes = pattern(2, 2 * MIB + 5);
    put(store, &id, &bytes, 100_000).await;
    let last = bytes.len() as u64 - 1;
    for (start, end, what) in [
        (0, 0, "first byte"),
        (last, last, "last byte"),
        (1, 1, "second byte"),
        (1_000_000, 1_500_000, "middle, across chunks"),
        (99_999, 100_000, "two bytes across a chunk boundary"),
        (0, last, "whole"),
        (last - 10, last, "tail"),
    ] {
        let got = read(store, &id, range(start, end)).await;
        assert_bytes(&got, &bytes[start as usize..=end as usize], what);
    }
    let one = new_id();
    put(store, &one, b"z", 1).await;
    assert_bytes(
        &read(store, &one, range(0, 0)).await,
        b"z",
        "whole of one byte",
    );
    store.delete(&id).await.unwrap();
    store.delete(&one).await.unwrap();
}

async fn missing_blobs(store: &dyn BlobStore) {
    let id = new_id();
    assert_code(
        store.get(&id, None).await.map(|_| ()),
        ErrorCode::NotFound,
        "get of a missing blob",
    );
    assert_code(
        store.get(&id, range(0, 0)).await.map(|_| ()),
        ErrorCode::NotFound,
        "ranged get of a missing blob",
    );
}

async fn deleting(store: &dyn BlobStore) {
    let id = new_id();
    put(store, &id, b"doomed", 3).await;
    store.delete(&id).await.expect("delete");
    assert_missing(store, &id, "deleted blob").await;
    store.delete(&id).await.expect("delete again");
    store
        .delete(&new_id())
        .await
        .expect("delete a blob never stored");
}

async fn copying(store: &dyn BlobStore) {
    let (from, to) = (new_id(), new_id());
    let bytes = pattern(3, 300_000);
    put(store, &from, &bytes, 65_536).await;
    store.copy(&from, &to).await.expect("copy");
    assert_bytes(&read(store, &to, None).await, &bytes, "copy");
    assert_bytes(&read(store, &from, None).await, &bytes, "source after copy");
    store.delete(&from).await.unwrap();
    assert_missing(store, &from, "deleted source").await;
    assert_bytes(
        &read(store, &to, None).await,
        &bytes,
        "copy after its source is deleted",
    );
    assert_bytes(
        &read(store, &to, range(5, 9)).await,
        &bytes[5..=9],
        "range of a copy",
    );

    // Copying an empty blob; copying onto itself.
    let (empty, empty_copy) = (new_id(), new_id());
    put(store, &empty, b"", 1).await;
    store.copy(&empty, &empty_copy).await.expect("copy empty");
    assert_bytes(&read(store, &empty_copy, None).await, b"", "empty copy");
    store.copy(&to, &to).await.expect("copy onto itself");
    assert_bytes(
        &read(store, &to, None).await,
        &bytes,
        "after copy onto itself",
    );

    let nowhere = new_id();
    assert_code(
        store.copy(&new_id(), &nowhere).await,
        ErrorCode::NotFound,
        "copy of a missing blob",
    );
    assert_missing(store, &nowhere, "target of a failed copy").await;
    for id in [to, empty, empty_copy] {
        store.delete(&id).await.unwrap();
    }
}

async fn failed_writes(store: &dyn BlobStore) {
    // The body's own error comes back (the service's size limit, a client
    // gone), and no blob is left.
    let id = new_id();
    let bytes = pattern(4, MIB);
    let body = failing(&bytes, 64 * 1024, Error::PayloadTooLarge("too big".into()));
    assert_code(
        store.put(&id, body).await,
        ErrorCode::PayloadTooLarge,
        "put of a failing body",
    );
    assert_missing(store, &id, "blob of a failed put").await;

    let id = new_id();
    let body = failing(b"", 1, Error::Unavailable("client went away".into()));
    assert_code(
        store.put(&id, body).await,
        ErrorCode::Unavailable,
        "put failing at once",
    );
    assert_missing(store, &id, "blob of a put failing at once").await;

    // A failed part is no part.
    let id = new_id();
    let handle = store.begin_parts(&id).await.unwrap();
    let body = failing(b"half a part", 4, Error::PayloadTooLarge("too big".into()));
    assert_code(
        store.put_part(&id, &handle, 1, body).await,
        ErrorCode::PayloadTooLarge,
        "put_part of a failing body",
    );
    let receipt = store
        .put_part(&id, &handle, 2, chunked(b"the part", 3))
        .await
        .unwrap();
    store
        .complete_parts(&id, &handle, &[(2, receipt)])
        .await
        .unwrap();
    assert_bytes(
        &read(store, &id, None).await,
        b"the part",
        "after a failed part",
    );
    store.delete(&id).await.unwrap();
}

async fn put_part(
    store: &dyn BlobStore,
    id: &str,
    handle: &str,
    number: u32,
    bytes: &[u8],
) -> String {
    store
        .put_part(id, handle, number, chunked(bytes, 256 * 1024 + 1))
        .await
        .unwrap_or_else(|e| panic!("part {number} of {id}: {e}"))
}

async fn multipart(store: &dyn BlobStore) {
    let (a, b) = (new_id(), new_id());
    let upload_a = store.begin_parts(&a).await.expect("begin_parts");
    let upload_b = store.begin_parts(&b).await.expect("begin_parts");
    assert_ne!(upload_a, upload_b);

    let (p1, p2) = (pattern(5, PART), pattern(6, PART));
    // Out of order; part 3 twice (the second replaces the first); part 4
    // left out when completing.
    let _replaced = put_part(store, &a, &upload_a, 3, b"old tail, replaced").await;
    let r2 = put_part(store, &a, &upload_a, 2, &p2).await;
    let r1 = put_part(store, &a, &upload_a, 1, &p1).await;
    let r3 = put_part(store, &a, &upload_a, 3, b"the tail").await;
    let _r4 = put_part(store, &a, &upload_a, 4, b"never listed").await;
    let rb = put_part(store, &b, &upload_b, 1, b"only b's").await;

    // Upload b has no part 2 (a's part 2 is not b's).
    assert!(
        store
            .complete_parts(&b, &upload_b, &[(1, rb.clone()), (2, r2.clone())])
            .await
            .is_err(),
        "completing with another upload's part"
    );
    assert!(
        store
            .complete_parts(&b, &upload_b, &[(2, r2.clone())])
            .await
            .is_err(),
        "completing with another upload's part alone"
    );
    assert_missing(store, &b, "blob of a refused completion").await;

    store
        .complete_parts(&a, &upload_a, &[(1, r1), (2, r2), (3, r3)])
        .await
        .expect("complete_parts");
    let mut want = p1.clone();
    want.extend_from_slice(&p2);
    want.extend_from_slice(b"the tail");
    assert_bytes(&read(store, &a, None).await, &want, "assembled blob");
    let at = PART as u64;
    assert_bytes(
        &read(store, &a, range(at - 2, at + 1)).await,
        &want[PART - 2..=PART + 1],
        "range across parts",
    );

    // Upload b is untouched by a's parts and by its failed completions.
    store
        .complete_parts(&b, &upload_b, &[(1, rb)])
        .await
        .expect("complete_parts of b");
    assert_bytes(
        &read(store, &b, None).await,
        b"only b's",
        "blob of upload b",
    );

    // A completed upload is over.
    assert_code(
        store.put_part(&a, &upload_a, 5, chunked(b"late", 4)).await,
        ErrorCode::NotFound,
        "part of a completed upload",
    );
    store.delete(&a).await.unwrap();
    store.delete(&b).await.unwrap();
}

async fn aborted_uploads(store: &dyn BlobStore) {
    let id = new_id();
    let handle = store.begin_parts(&id).await.unwrap();
    let receipt = put_part(store, &id, &handle, 1, b"abandoned").await;
    store.abort_parts(&id, &handle).await.expect("abort_parts");
    assert_missing(store, &id, "blob of an aborted upload").await;
    assert_code(
        store.complete_parts(&id, &handle, &[(1, receipt)]).await,
        ErrorCode::NotFound,
        "completing an aborted upload",
    );
    assert_missing(store, &id, "blob of an aborted upload, after completing").await;
    assert_code(
        store.put_part(&id, &handle, 2, chunked(b"late", 4)).await,
        ErrorCode::NotFound,
        "part of an aborted upload",
    );
    store
        .abort_parts(&id, &handle)
        .await
        .expect("aborting an unknown upload");

    // An upload that was never completed nor aborted leaves no blob.
    let id = new_id();
    let handle = store.begin_parts(&id).await.unwrap();
    put_part(store, &id, &handle, 1, b"pending").await;
    assert_missing(store, &id, "blob of an upload in progress").await;
    store.abort_parts(&id, &handle).await.unwrap();
}
