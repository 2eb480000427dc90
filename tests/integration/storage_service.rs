//! The whole storage service over each pairing of stores, through the
//! service-level suite: memory + memory, SQLite + files (the all-in-one),
//! Postgres + S3 on a real SeaweedFS (compose's shape, with MinIO there).

use std::sync::Arc;

use bunbase_core::config::{Secret, StoreUrl};
use bunbase_core::storage::adapters::fs::FsBlobs;
use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
use bunbase_core::storage::adapters::s3::S3Blobs;
use bunbase_core::storage::testing::service::suite;
use bunbase_core::storage::{
    BlobStore, MetaStore, Storage, StorageLimits, StorageMetrics, StorageSecret,
};
use bunbase_tests::seaweed::seaweed;
use bunbase_tests::servers::postgres_url;

fn storage(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>) -> Storage {
    Storage::new(
        meta,
        blobs,
        StorageLimits::default(),
        StorageMetrics::unregistered(),
        StorageSecret::new(&[2; 32]),
    )
}

#[tokio::test]
async fn on_memory() {
    suite(&storage(
        Arc::new(MemoryMeta::new()),
        Arc::new(MemoryBlobs::new()),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let meta = bunbase_core::storage::adapters::sql::open(&StoreUrl::Sqlite(
        dir.path().join("storage.db"),
    ))
    .await
    .unwrap();
    let blobs = Arc::new(FsBlobs::open(&dir.path().join("blobs")).unwrap());
    suite(&storage(meta, blobs)).await;
    // Nothing left behind: every blob of the suite was deleted with its object.
    let left: Vec<_> = walk(&dir.path().join("blobs").join("blobs"));
    assert!(left.is_empty(), "blobs left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_and_s3() {
    let meta = bunbase_core::storage::adapters::sql::open(&StoreUrl::Postgres(Secret::new(
        postgres_url(),
    )))
    .await
    .unwrap();
    let bucket = format!("svc-{}", bunbase_core::id::random_hex(4));
    let blobs = Arc::new(S3Blobs::connect(&seaweed().url(&bucket)).await.unwrap());
    suite(&storage(meta, blobs)).await;
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}
