//! Storage adapters. Blobs: `memory`, `fs` (the all-in-one), `s3` (any S3
//! server; MinIO in compose). Metadata: `memory`, SQL (SQLite, Postgres).

pub mod fs;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sql")]
pub mod sql;

use std::path::Path;
use std::sync::Arc;

use super::BlobStore;
use crate::error::Error;

/// The blob store a URL names: empty for the directory `default`, a
/// directory (`fs:/path` or a path), `s3://KEY:SECRET@host:port/bucket`
/// or `memory`. Storage's objects and Functions' bundles are opened here.
pub async fn open_blobs(url: &str, default: &Path) -> Result<Arc<dyn BlobStore>, Error> {
    Ok(if url.is_empty() {
        Arc::new(fs::FsBlobs::open(default)?)
    } else if url == "memory" {
        Arc::new(memory::MemoryBlobs::new())
    } else if url.starts_with("s3://") {
        #[cfg(feature = "s3")]
        {
            Arc::new(s3::S3Blobs::connect(url).await?)
        }
        #[cfg(not(feature = "s3"))]
        {
            return Err(Error::invalid("this build has no S3 support (feature s3)"));
        }
    } else {
        let path = url.strip_prefix("fs:").unwrap_or(url);
        Arc::new(fs::FsBlobs::open(Path::new(path))?)
    })
}
