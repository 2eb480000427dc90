//! The storage metadata conformance suite on every adapter, the SQL ones on
//! real databases (a SQLite file; a Postgres server).

use bunbase_core::storage::adapters::memory::MemoryMeta;
use bunbase_core::storage::adapters::sql::{PostgresMeta, SqliteMeta};
use bunbase_core::storage::testing::meta::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    suite(&MemoryMeta::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.db");
    // Opened twice: the second start finds the migrations applied.
    SqliteMeta::open(&path).await.unwrap();
    let store = SqliteMeta::open(&path).await.unwrap();
    suite(&store).await;
    // The suite leaves nothing behind that keeps it from running again.
    suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let url = bunbase_tests::servers::postgres_database();
    PostgresMeta::connect(&url).await.unwrap();
    let store = PostgresMeta::connect(&url).await.unwrap();
    suite(&store).await;
    suite(&store).await;
}

/// `open` picks the adapter a store URL names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_by_url() {
    use bunbase_core::config::StoreUrl;
    use bunbase_core::storage::adapters::sql::open;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-url.db");
    let sqlite = StoreUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    assert_eq!(open(&sqlite).await.unwrap().kind(), "sqlite");
    assert_eq!(open(&StoreUrl::Memory).await.unwrap().kind(), "memory");
    let postgres = StoreUrl::parse(&bunbase_tests::servers::postgres_database()).unwrap();
    let store = open(&postgres).await.unwrap();
    assert_eq!(store.kind(), "postgres");
    store.check().await.unwrap();
}
