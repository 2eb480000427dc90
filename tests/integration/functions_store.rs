//! The functions store conformance suite on every adapter, the SQL ones on
//! real databases (a SQLite file; a Postgres server).

use std::sync::Arc;

use bunbase_core::functions::adapters::memory::MemoryFunctions;
use bunbase_core::functions::adapters::sql::{PostgresFunctions, SqliteFunctions};
use bunbase_core::functions::testing::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    let store = Arc::new(MemoryFunctions::new());
    suite(store.clone()).await;
    suite(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("functions.db");
    // Opened twice: the second start finds the migrations applied.
    SqliteFunctions::open(&path).await.unwrap();
    let store = Arc::new(SqliteFunctions::open(&path).await.unwrap());
    suite(store.clone()).await;
    // The suite leaves nothing behind that keeps it from running again.
    suite(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let url = bunbase_tests::servers::postgres_database();
    PostgresFunctions::connect(&url).await.unwrap();
    let store = Arc::new(PostgresFunctions::connect(&url).await.unwrap());
    suite(store.clone()).await;
    suite(store).await;
}

/// `open` picks the adapter a store URL names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_by_url() {
    use bunbase_core::config::StoreUrl;
    use bunbase_core::functions::adapters::sql::open;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-url.db");
    let sqlite = StoreUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    let store = open(&sqlite).await.unwrap();
    assert_eq!(store.kind(), "sqlite");
    store.check().await.unwrap();
    assert_eq!(open(&StoreUrl::Memory).await.unwrap().kind(), "memory");
    let postgres = StoreUrl::parse(&bunbase_tests::servers::postgres_database()).unwrap();
    let store = open(&postgres).await.unwrap();
    assert_eq!(store.kind(), "postgres");
    store.check().await.unwrap();
}
