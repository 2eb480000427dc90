//! The identity store conformance suite on every adapter, the SQL ones on
//! real databases (a SQLite file; a Postgres server).

use std::sync::Arc;

use bunbase_core::auth::adapters::memory::MemoryStore;
use bunbase_core::auth::adapters::sql::sqlite::SqliteStore;
use bunbase_core::auth::testing::{self, IdentityStore, StoreFuture};

#[tokio::test]
async fn memory_store() {
    let make = || -> StoreFuture {
        Box::pin(async { Arc::new(MemoryStore::new()) as Arc<dyn IdentityStore> })
    };
    testing::run(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.db");
    // One file for the whole suite (checks use random ids), opened once and
    // again to prove migrations are idempotent.
    SqliteStore::open(&path).await.unwrap();
    let store: Arc<dyn IdentityStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let make = move || -> StoreFuture {
        let store = store.clone();
        Box::pin(async move { store })
    };
    testing::run(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    use bunbase_core::auth::adapters::sql::postgres::PostgresStore;
    let url = bunbase_tests::servers::postgres_database();
    // Connected twice: the second start finds the migrations applied.
    PostgresStore::connect(&url).await.unwrap();
    let store: Arc<dyn IdentityStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let make = move || -> StoreFuture {
        let store = store.clone();
        Box::pin(async move { store })
    };
    testing::run(&make).await;
}
