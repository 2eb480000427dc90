//! Storage: per-project buckets of objects, with rules, quotas, signed URLs,
//! multipart uploads and S3 credentials.
//!
//! An object is two things kept apart: its description (bucket, key, size,
//! ETag, content type, metadata, owner) in a [`MetaStore`], and its bytes,
//! under a fresh random id, in a [`BlobStore`]. A write stores the new blob
//! first and then swaps the description in one transaction, so readers see
//! the old object or the new one, never a partial one; a crash between the
//! two leaves only an unreferenced blob.

pub mod access;
pub mod adapters;
pub mod blob;
pub mod meta;
mod metrics;
pub mod model;
mod objects;
pub mod range;
mod secret;
mod service;
pub mod signed;
mod tally;
mod uploads;

#[cfg(feature = "testing")]
pub mod testing;

pub use access::Actor;
pub use blob::{BlobStore, ByteRange, ByteStream};
pub use meta::MetaStore;
pub use metrics::StorageMetrics;
pub use model::{
    Bucket, BucketRules, BucketSettings, ListPage, ListQuery, ObjectInfo, ObjectPath, Part,
    PutCondition, Quota, S3Credential, Upload, Usage,
};
pub use objects::{Fetched, GetObject, PutObject};
pub use range::RangeSpec;
pub use secret::StorageSecret;
pub use service::{
    BucketPatch, NewS3Credential, S3CredentialInfo, SignRequest, SignedUrl, Storage, StorageLimits,
    encode_key,
};
pub use signed::{SignedGrant, SignedMethod, SignedParams};
pub use uploads::{CompletedPart, PartIn};
