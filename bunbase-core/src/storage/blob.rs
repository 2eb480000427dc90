//! The `BlobStore` trait: where objects' bytes live, by opaque id. Object
//! names, buckets, sizes and hashes are the metadata store's business; a
//! blob store only moves bytes, all or nothing.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::error::Error;

/// Bytes in or out, in chunks; an `Err` item ends the stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// Bytes `start..=end` of a blob (both within it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Blob ids are made by the service: 32 lowercase hex digits. Adapters
/// may rely on that (file names, S3 keys).
pub fn validate_blob_id(id: &str) -> Result<(), Error> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::internal(format!("{id:?} is not a blob id")))
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// What it is, for logs and the banner (`fs /var/lib/bunbase/storage`).
    fn describe(&self) -> String;

    /// Whether the store answers (health checks).
    async fn check(&self) -> Result<(), Error>;

    /// Stores `body` as blob `id` (replacing none: ids are new). All or
    /// nothing: if the stream ends with an error, or the process dies
    /// meanwhile, no blob `id` exists afterwards. Returns the bytes stored.
    async fn put(&self, id: &str, body: ByteStream) -> Result<u64, Error>;

    /// The blob's bytes, or those of `range`; `not_found` if there is no
    /// such blob.
    async fn get(&self, id: &str, range: Option<ByteRange>) -> Result<ByteStream, Error>;

    /// Removes the blob; removing a missing one is not an error.
    async fn delete(&self, id: &str) -> Result<(), Error>;

    /// Makes blob `to` a copy of blob `from` (server-side where possible).
    async fn copy(&self, from: &str, to: &str) -> Result<(), Error>;

    /// Starts assembling blob `id` from parts: returns the store's handle
    /// of the upload (kept by the caller, passed back below).
    async fn begin_parts(&self, id: &str) -> Result<String, Error>;

    /// Stores part `number` (1..=10000) of the upload, replacing an earlier
    /// part of that number. Returns a receipt the caller keeps and passes to
    /// [`BlobStore::complete_parts`].
    async fn put_part(
        &self,
        id: &str,
        handle: &str,
        number: u32,
        body: ByteStream,
    ) -> Result<String, Error>;

    /// Makes blob `id` the concatenation of `parts` (number and receipt, in
    /// ascending order, a subset of those stored), all or nothing, and drops
    /// the upload's parts.
    async fn complete_parts(
        &self,
        id: &str,
        handle: &str,
        parts: &[(u32, String)],
    ) -> Result<(), Error>;

    /// Drops the upload and its parts; an unknown upload is not an error.
    async fn abort_parts(&self, id: &str, handle: &str) -> Result<(), Error>;
}
